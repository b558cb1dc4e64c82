-- Views, routines, triggers and events in the given databases. Ferry migrates tables only;
-- verify names these so that the user recreates them (they run as their DEFINER).
-- Parameter: the list of databases, four times.
SELECT 'view' AS kind, TABLE_SCHEMA AS `schema`, TABLE_NAME AS `name`, DEFINER AS definer
FROM information_schema.VIEWS WHERE TABLE_SCHEMA IN (?)
UNION ALL
SELECT LOWER(ROUTINE_TYPE), ROUTINE_SCHEMA, ROUTINE_NAME, DEFINER
FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA IN (?)
UNION ALL
SELECT 'trigger', TRIGGER_SCHEMA, TRIGGER_NAME, DEFINER
FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA IN (?)
UNION ALL
SELECT 'event', EVENT_SCHEMA, EVENT_NAME, DEFINER
FROM information_schema.EVENTS WHERE EVENT_SCHEMA IN (?)
ORDER BY 2, 1, 3;
