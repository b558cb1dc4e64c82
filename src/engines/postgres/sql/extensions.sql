-- Extensions that the tables $1 (oid[]) need besides the ones that provide column types:
-- those that provide a function, operator or operator class used by a default, a generated
-- column, a constraint or an index of these tables.
WITH objects(classid, objid) AS (
  SELECT 'pg_attrdef'::regclass, ad.oid FROM pg_attrdef ad WHERE ad.adrelid = ANY ($1::oid[])
  UNION ALL
  SELECT 'pg_constraint'::regclass, c.oid FROM pg_constraint c WHERE c.conrelid = ANY ($1::oid[])
  UNION ALL
  SELECT 'pg_class'::regclass, i.indexrelid FROM pg_index i WHERE i.indrelid = ANY ($1::oid[])
)
SELECT DISTINCT x.extname AS name
FROM objects o
JOIN pg_depend d ON d.classid = o.classid AND d.objid = o.objid
JOIN pg_depend m
  ON m.classid = d.refclassid AND m.objid = d.refobjid
 AND m.refclassid = 'pg_extension'::regclass AND m.deptype = 'e'
JOIN pg_extension x ON x.oid = m.refobjid
ORDER BY 1;
