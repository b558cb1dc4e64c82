-- Triggers of the given databases, in the order they fire on their table.
-- Parameter: the list of databases.
SELECT TRIGGER_SCHEMA AS `schema`, TRIGGER_NAME AS `name`, EVENT_OBJECT_SCHEMA AS table_schema, EVENT_OBJECT_TABLE AS table_name
FROM information_schema.TRIGGERS
WHERE TRIGGER_SCHEMA IN (?)
ORDER BY EVENT_OBJECT_SCHEMA, EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER;
