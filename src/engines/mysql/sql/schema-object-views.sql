-- Views of the given databases, with their SELECT as the server stores it (every table and
-- view it reads qualified as `database`.`name`), to order views after the views they read.
-- Parameter: the list of databases.
SELECT TABLE_SCHEMA AS `schema`, TABLE_NAME AS `name`, VIEW_DEFINITION AS `body`
FROM information_schema.VIEWS
WHERE TABLE_SCHEMA IN (?)
ORDER BY TABLE_SCHEMA, TABLE_NAME;
