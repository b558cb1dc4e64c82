-- Extensions this server can install or has installed.
SELECT name, installed_version FROM pg_available_extensions ORDER BY name;
