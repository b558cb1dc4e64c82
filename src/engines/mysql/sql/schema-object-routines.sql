-- Stored functions and procedures of the given databases, functions first (a procedure may call one).
-- Parameter: the list of databases.
SELECT ROUTINE_SCHEMA AS `schema`, ROUTINE_NAME AS `name`, ROUTINE_TYPE AS `type`
FROM information_schema.ROUTINES
WHERE ROUTINE_SCHEMA IN (?)
ORDER BY ROUTINE_SCHEMA, ROUTINE_TYPE, ROUTINE_NAME;
