-- Views, routines, triggers and events that exist on the destination in the given databases.
-- Parameter: the list of databases, four times.
SELECT 'view' AS kind, TABLE_SCHEMA AS `schema`, TABLE_NAME AS `name`
FROM information_schema.TABLES WHERE TABLE_SCHEMA IN (?) AND TABLE_TYPE IN ('VIEW', 'SYSTEM VIEW')
UNION ALL
SELECT LOWER(ROUTINE_TYPE), ROUTINE_SCHEMA, ROUTINE_NAME
FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA IN (?)
UNION ALL
SELECT 'trigger', TRIGGER_SCHEMA, TRIGGER_NAME
FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA IN (?)
UNION ALL
SELECT 'event', EVENT_SCHEMA, EVENT_NAME
FROM information_schema.EVENTS WHERE EVENT_SCHEMA IN (?);
