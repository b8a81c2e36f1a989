-- Vocabularies (sources.toml `vocabularies`): a value is matched onto its
-- canonical spelling by a normalized key: ASCII letters lower-cased, every run
-- of other characters one space, trimmed. So 'pacific', ' PACIFIC', 'Mid
-- Atlantic' and 'New-England' all match their division. pipeline.sources
-- computes the same key in Python to refuse two canonical values sharing a key.
create or replace function silver.vocabulary_key(raw text)
returns text
language sql
immutable
parallel safe
as $$
    select nullif(btrim(regexp_replace(lower(raw collate "C"), '[^a-z0-9]+', ' ', 'g')), '')
$$;
