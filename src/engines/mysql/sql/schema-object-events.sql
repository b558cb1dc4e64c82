-- Scheduled events of the given databases.
-- Parameter: the list of databases.
SELECT EVENT_SCHEMA AS `schema`, EVENT_NAME AS `name`
FROM information_schema.EVENTS
WHERE EVENT_SCHEMA IN (?)
ORDER BY EVENT_SCHEMA, EVENT_NAME;
