-- Rows that broke drop rules, once each with every reason; the record is the
-- bronze line as loaded, read back by its load and line (the stage does not
-- carry every line's raw values for the few that fail).
insert into silver.quarantine (
    run_id, stage, source_table, source_file, line_number, load_id, extract_date, business_key, rule_name,
    reason, record
)
select
    %(run_id)s,
    'silver',
    {table},
    files.source_file,
    stage._line_number,
    stage._load_id,
    stage._extract_date,
    stage.{key},
    stage.failed_drop[1],
    array_to_string(stage.drop_reasons, '; '),
    to_jsonb(raw_rows) - '_load_id' - '_line_number' || jsonb_build_object('failed_rules', to_jsonb(stage.failed_drop))
from stage
inner join meta.ingested_files as files
    on stage._load_id = files.load_id
inner join {raw} as raw_rows
    on stage._load_id = raw_rows._load_id
    and stage._line_number = raw_rows._line_number
    and raw_rows._load_id = any(%(loads)s)
where stage.copy_number = 1
    and cardinality(stage.failed_drop) > 0
