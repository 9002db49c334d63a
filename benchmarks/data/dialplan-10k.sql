-- A dialplan context "big" of 10,000 extensions for tests and benchmarks
-- (docs/performance.md). Run after `fsconf migrate up`; replaces "big".
-- Each extension: one destination_number condition with two actions; every
-- 10th also a time condition with an anti-action; every 100th a regex="any"
-- condition with two <regex> children and a nested condition. Positions are
-- inserted in reverse so that ordering is the renderer's work, not luck.
BEGIN;
DELETE FROM fsconf.dialplan_contexts WHERE name = 'big';
INSERT INTO fsconf.global_variables (name, value) VALUES ('big_moh', 'local_stream://moh')
    ON CONFLICT DO NOTHING;
INSERT INTO fsconf.dialplan_contexts (name) VALUES ('big');
INSERT INTO fsconf.dialplan_extensions (context_id, name, continue, position)
SELECT c.id, 'ext-' || lpad(i::text, 5, '0'), CASE WHEN i % 10 = 0 THEN 'true' END, i
FROM fsconf.dialplan_contexts c, generate_series(10000, 1, -1) AS i WHERE c.name = 'big';
INSERT INTO fsconf.dialplan_conditions (extension_id, position, field, expression)
SELECT e.id, 1, 'destination_number', '^(' || (100000 + e.position)::text || ')$'
FROM fsconf.dialplan_extensions e JOIN fsconf.dialplan_contexts c ON c.id = e.context_id AND c.name = 'big';
INSERT INTO fsconf.dialplan_conditions (extension_id, position, wday, hour, break)
SELECT e.id, 2, '2-6', '9-18', 'never'
FROM fsconf.dialplan_extensions e JOIN fsconf.dialplan_contexts c ON c.id = e.context_id AND c.name = 'big'
WHERE e.position % 10 = 0;
INSERT INTO fsconf.dialplan_conditions (extension_id, position, regex, require_nested)
SELECT e.id, 3, 'any', 'false'
FROM fsconf.dialplan_extensions e JOIN fsconf.dialplan_contexts c ON c.id = e.context_id AND c.name = 'big'
WHERE e.position % 100 = 0;
INSERT INTO fsconf.dialplan_conditions (extension_id, parent_id, position, field, expression)
SELECT d.extension_id, d.id, 1, '${open}', '^true$' FROM fsconf.dialplan_conditions d
JOIN fsconf.dialplan_extensions e ON e.id = d.extension_id
JOIN fsconf.dialplan_contexts c ON c.id = e.context_id AND c.name = 'big' WHERE d.regex = 'any';
INSERT INTO fsconf.dialplan_regexes (condition_id, position, field, expression)
SELECT d.id, r, 'destination_number', '^' || r::text || '(\d+)$' FROM fsconf.dialplan_conditions d
JOIN fsconf.dialplan_extensions e ON e.id = d.extension_id
JOIN fsconf.dialplan_contexts c ON c.id = e.context_id AND c.name = 'big', generate_series(1, 2) AS r
WHERE d.regex = 'any';
INSERT INTO fsconf.dialplan_actions (condition_id, kind, position, application, data)
SELECT d.id, 'action', a, CASE a WHEN 1 THEN 'set' ELSE 'bridge' END,
       CASE a WHEN 1 THEN 'called=$1' ELSE 'user/${called}@${domain_name}' END
FROM fsconf.dialplan_conditions d
JOIN fsconf.dialplan_extensions e ON e.id = d.extension_id
JOIN fsconf.dialplan_contexts c ON c.id = e.context_id AND c.name = 'big', generate_series(1, 2) AS a
WHERE d.position = 1 AND d.parent_id IS NULL;
INSERT INTO fsconf.dialplan_actions (condition_id, kind, position, application, data, inline)
SELECT d.id, k, 1, 'set', CASE k WHEN 'action' THEN 'open=true' ELSE 'open=false' END, 'true'
FROM fsconf.dialplan_conditions d
JOIN fsconf.dialplan_extensions e ON e.id = d.extension_id
JOIN fsconf.dialplan_contexts c ON c.id = e.context_id AND c.name = 'big', unnest(ARRAY['action', 'anti-action']) AS k
WHERE d.position = 2;
INSERT INTO fsconf.dialplan_actions (condition_id, kind, position, application, data)
SELECT d.id, 'action', 1, 'playback', '$${big_moh}' FROM fsconf.dialplan_conditions d
JOIN fsconf.dialplan_extensions e ON e.id = d.extension_id
JOIN fsconf.dialplan_contexts c ON c.id = e.context_id AND c.name = 'big' WHERE d.parent_id IS NOT NULL;
COMMIT;
ANALYZE fsconf.dialplan_extensions, fsconf.dialplan_conditions, fsconf.dialplan_regexes, fsconf.dialplan_actions;
