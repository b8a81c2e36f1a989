-- Cleaning functions for silver: raw landing text in, a clean typed value or
-- NULL out. They never raise, whatever the input, so one bad value cannot
-- abort a set-based load; a NULL tells the caller to quarantine the row.
--
-- Every function is plain `language sql immutable parallel safe` with a
-- single-expression body so the planner inlines it into the calling query.
-- Helpers take cheap arguments (a column, btrim, substr, a cast): the planner
-- only inlines a function whose repeated arguments cost little, and an
-- inlined argument is evaluated again at every use. Regular expressions run
-- under collate "C" (fast, and deterministic whatever the column's
-- collation); case mapping runs under silver.unicode_case (001_schemas.sql:
-- "pg_c_utf8", or C.UTF-8 before PostgreSQL 17) so 'é' and 'ễ' change case
-- whatever the database's default collation is.

-- Shared by the date and timestamp parsers: a calendar date, or NULL when
-- the parts do not name one (make_date itself raises on bad parts).
create or replace function silver.make_date_or_null(year integer, month integer, day integer)
returns date
language sql
immutable
parallel safe
as $$
    select case
        when year between 1 and 9999
            -- days in the month (29 for February); NULL, so no date, for a month outside 1..12
            and day between 1 and ('{31,29,31,30,31,30,31,31,30,31,30,31}'::integer[])[month]
            and (day <= 28 or month <> 2 or (year % 4 = 0 and (year % 100 <> 0 or year % 400 = 0)))
            then make_date(year, month, day)
    end
$$;

-- True when value is one or more ASCII digits: cheaper than a regular
-- expression for the fixed-layout fields of dates and timestamps. value is
-- used once, so any argument, however long, inlines.
create or replace function silver.is_digits(value text)
returns boolean
language sql
immutable
parallel safe
as $$
    select coalesce(ltrim(nullif(value collate "C", '') || 'x', '0123456789') = 'x', false)
$$;

-- One month number from an English month name or its three-letter
-- abbreviation; the caller's regular expression has already checked the name.
create or replace function silver.month_number(month_name text)
returns integer
language sql
immutable
parallel safe
as $$
    select (strpos('janfebmaraprmayjunjulaugsepoctnovdec', lower(left(month_name collate "C", 3))) + 2) / 3
$$;

-- ---------------------------------------------------------------- email
create or replace function silver.clean_email(raw text)
returns text
language sql
immutable
parallel safe
as $$
    select nullif(lower(btrim(raw collate silver.unicode_case, E' \t\r\n')), '')
$$;

-- Validates the cleaned value, so ' Ann@X.com ' is valid and a blank email
-- is NULL (missing), not false (malformed).
create or replace function silver.is_valid_email(email text)
returns boolean
language sql
immutable
parallel safe
as $$
    select
        silver.clean_email(email) collate "C"
            ~ '^[a-z0-9_%+-]+(\.[a-z0-9_%+-]+)*@([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}$'
        and length(silver.clean_email(email)) <= 254
$$;

-- ---------------------------------------------------------------- names
-- Case is checked on the raw text: whitespace has no case, so it gives the
-- same answer as checking the collapsed text, and regexp_replace runs once.
create or replace function silver.clean_name(raw text)
returns text
language sql
immutable
parallel safe
as $$
    select nullif(
        btrim(
            regexp_replace(
                case
                    when raw collate silver.unicode_case = upper(raw collate silver.unicode_case)
                        or raw collate silver.unicode_case = lower(raw collate silver.unicode_case)
                        then initcap(raw collate silver.unicode_case)
                    else raw collate silver.unicode_case
                end collate "C",
                -- Unicode White_Space, listed: a collation's \s may leave out the no-break spaces
                '[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+',
                ' ',
                'g'
            ),
            ' '
        ),
        ''
    )
$$;

-- ---------------------------------------------------------------- phones
-- The number without the separators people write: spaces, dashes, dots and
-- parentheses. Anything else left over (a letter, a second '+', a tab) makes
-- the result fail the digit pattern in e164_or_null.
create or replace function silver.phone_compact(raw text)
returns text
language sql
immutable
parallel safe
as $$
    select replace(replace(replace(replace(replace(raw, ' ', ''), '-', ''), '(', ''), ')', ''), '.', '')
$$;

-- '+' and the digits when digits (country code first) form a valid E.164
-- number: +1 numbers need a NANP area code and exchange starting 2-9 and
-- not all one digit; others need 8..15 digits and a country code 2-9.
create or replace function silver.e164_or_null(digits text)
returns text
language sql
immutable
parallel safe
as $$
    select case
        when digits collate "C" ~ '^(1[2-9][0-9]{2}[2-9][0-9]{6}|[2-9][0-9]{7,14})$'
            and digits not in (
                '12222222222', '13333333333', '14444444444', '15555555555',
                '16666666666', '17777777777', '18888888888', '19999999999'
            )
            then '+' || digits
    end
$$;

-- E.164 ("+14155550123") or NULL: we flag what we cannot read, never invent.
-- A leading '+' or '00' marks an international number; otherwise the number
-- is national (national_digits long, the default calling code is added) or
-- already carries the default calling code.
create or replace function silver.phone_e164(
    raw text,
    default_calling_code text default '1',
    national_digits integer default 10
)
returns text
language sql
immutable
parallel safe
as $$
    select case
        when ltrim(raw) collate "C" like '+%' then silver.e164_or_null(substr(silver.phone_compact(raw), 2))
        when ltrim(raw) collate "C" like '00%' then silver.e164_or_null(substr(silver.phone_compact(raw), 3))
        when length(silver.phone_compact(raw)) = national_digits
            then silver.e164_or_null(default_calling_code || silver.phone_compact(raw))
        when length(silver.phone_compact(raw)) = length(default_calling_code) + national_digits
            and starts_with(silver.phone_compact(raw), default_calling_code)
            then silver.e164_or_null(silver.phone_compact(raw))
    end
$$;

-- ---------------------------------------------------------------- dates and timestamps
-- The timestamp layouts: YYYY-MM-DDTHH:MM:SSZ, YYYY-MM-DDTHH:MM:SS+HH:MM (or
-- -HH:MM) and YYYY-MM-DD HH:MM:SS, with hours 0-23 and minutes and seconds
-- 0-59 (offset too). like and a digit check on the fixed positions cost a
-- fraction of a regular expression. The date itself is checked by the caller.
create or replace function silver.is_timestamp_layout(value text)
returns boolean
language sql
immutable
parallel safe
as $$
    select
        (
            value collate "C" like '____-__-__T__:__:__Z'
            or value collate "C" like '____-__-__ __:__:__'
            or value collate "C" like '____-__-__T__:__:__+__:__'
            or value collate "C" like '____-__-__T__:__:__-__:__'
        )
        -- substr past the end is '', so the offset fields add nothing to the shorter layouts
        and silver.is_digits(
            substr(value, 1, 4) || substr(value, 6, 2) || substr(value, 9, 2)
            || substr(value, 12, 2) || substr(value, 15, 2) || substr(value, 18, 2)
            || substr(value, 21, 2) || substr(value, 24, 2)
        )
        and substr(value collate "C", 12, 2) <= '23'
        and substr(value collate "C", 15, 2) <= '59'
        and substr(value collate "C", 18, 2) <= '59'
        and substr(value collate "C", 21, 2) <= '23'
        and substr(value collate "C", 24, 2) <= '59'
$$;

-- value is already trimmed. Each layout is recognised before anything is
-- cast: the numeric ones with like and a digit check on their fixed
-- positions, the ones with month names with a short regular expression
-- behind a like guard (a like miss costs next to nothing, a regular
-- expression does not; an alternation of twelve month names costs three
-- times a letter class, so the name is checked by lookup instead).
create or replace function silver.parse_trimmed_date(value text)
returns date
language sql
immutable
parallel safe
as $$
    select case
        -- YYYY-MM-DD, alone or as the date of a timestamp
        when (value collate "C" like '____-__-__' or silver.is_timestamp_layout(value))
            and silver.is_digits(substr(value, 1, 4) || substr(value, 6, 2) || substr(value, 9, 2))
            then silver.make_date_or_null(
                substr(value, 1, 4)::integer, substr(value, 6, 2)::integer, substr(value, 9, 2)::integer
            )
        -- MM/DD/YYYY (US)
        when value collate "C" like '__/__/____'
            and silver.is_digits(substr(value, 1, 2) || substr(value, 4, 2) || substr(value, 7, 4))
            then silver.make_date_or_null(
                substr(value, 7, 4)::integer, substr(value, 1, 2)::integer, substr(value, 4, 2)::integer
            )
        -- YYYY/MM/DD
        when value collate "C" like '____/__/__'
            and silver.is_digits(substr(value, 1, 4) || substr(value, 6, 2) || substr(value, 9, 2))
            then silver.make_date_or_null(
                substr(value, 1, 4)::integer, substr(value, 6, 2)::integer, substr(value, 9, 2)::integer
            )
        -- DD-Mon-YYYY (or D-Mon-YYYY); the name must be the abbreviation of the month it gives
        when (value collate "C" like '__-___-____' or value collate "C" like '_-___-____')
            and value collate "C" ~ '^[0-9]{1,2}-[A-Za-z]{3}-[0-9]{4}$'
            and lower(split_part(value collate "C", '-', 2)) = substr(
                'janfebmaraprmayjunjulaugsepoctnovdec', 3 * silver.month_number(split_part(value, '-', 2)) - 2, 3
            )
            then silver.make_date_or_null(
                right(value, 4)::integer,
                silver.month_number(split_part(value, '-', 2)),
                split_part(value, '-', 1)::integer
            )
        -- Month D, YYYY; the name must be the full name of the month its first three letters give
        when value collate "C" like '% %, ____'
            and value collate "C" ~ '^[A-Za-z]+ [0-9]{1,2}, [0-9]{4}$'
            and lower(split_part(value collate "C", ' ', 1)) = (
                '{january,february,march,april,may,june,july,august,september,october,november,december}'::text[]
            )[silver.month_number(value)]
            then silver.make_date_or_null(
                right(value, 4)::integer,
                silver.month_number(value),
                split_part(split_part(value, ' ', 2), ',', 1)::integer
            )
    end
$$;

-- A value that needs no trimming is passed as it is: the inlined body reads
-- it a dozen times, and a column reference costs nothing to read again.
create or replace function silver.parse_date(raw text)
returns date
language sql
immutable
parallel safe
as $$
    select case
        when btrim(raw, E' \t\r\n') collate "C" = raw then silver.parse_trimmed_date(raw)
        else silver.parse_trimmed_date(btrim(raw, E' \t\r\n'))
    end
$$;

-- A UTC instant from a date, a wall-clock time and the offset it was written
-- in, or NULL when the time or offset is out of range (make_time raises). The
-- offset is taken off the wall-clock time and the result read as UTC, so the
-- session TimeZone plays no part. The offset parts carry its sign: -05:30 is
-- (-5, -30).
create or replace function silver.utc_timestamp_or_null(
    day date,
    hour integer,
    minute integer,
    second integer,
    offset_hours integer,
    offset_minutes integer
)
returns timestamptz
language sql
immutable
parallel safe
as $$
    select case
        when hour between 0 and 23
            and minute between 0 and 59
            and second between 0 and 59
            and offset_hours between -23 and 23
            and offset_minutes between -59 and 59
            then timezone(
                'UTC',
                day + make_time(hour, minute, second) - make_interval(hours => offset_hours, mins => offset_minutes)
            )
    end
$$;

-- value is already trimmed. Each layout is recognised with like and a digit
-- check on its fixed positions before anything is cast.
create or replace function silver.parse_trimmed_timestamp(value text)
returns timestamptz
language sql
immutable
parallel safe
as $$
    select case
        -- YYYY-MM-DDTHH:MM:SSZ and YYYY-MM-DD HH:MM:SS, both UTC
        when (value collate "C" like '____-__-__T__:__:__Z' or value collate "C" like '____-__-__ __:__:__')
            and silver.is_digits(
                substr(value, 1, 4) || substr(value, 6, 2) || substr(value, 9, 2)
                || substr(value, 12, 2) || substr(value, 15, 2) || substr(value, 18, 2)
            )
            then silver.utc_timestamp_or_null(
                silver.make_date_or_null(
                    substr(value, 1, 4)::integer, substr(value, 6, 2)::integer, substr(value, 9, 2)::integer
                ),
                substr(value, 12, 2)::integer,
                substr(value, 15, 2)::integer,
                substr(value, 18, 2)::integer,
                0,
                0
            )
        -- YYYY-MM-DDTHH:MM:SS+HH:MM and -HH:MM
        when (
            value collate "C" like '____-__-__T__:__:__+__:__'
            or value collate "C" like '____-__-__T__:__:__-__:__'
        )
            and silver.is_digits(
                substr(value, 1, 4) || substr(value, 6, 2) || substr(value, 9, 2)
                || substr(value, 12, 2) || substr(value, 15, 2) || substr(value, 18, 2)
                || substr(value, 21, 2) || substr(value, 24, 2)
            )
            then silver.utc_timestamp_or_null(
                silver.make_date_or_null(
                    substr(value, 1, 4)::integer, substr(value, 6, 2)::integer, substr(value, 9, 2)::integer
                ),
                substr(value, 12, 2)::integer,
                substr(value, 15, 2)::integer,
                substr(value, 18, 2)::integer,
                substr(value, 20, 3)::integer,
                (substr(value, 20, 1) || substr(value, 24, 2))::integer
            )
        -- a bare date: midnight UTC
        else timezone('UTC', silver.parse_trimmed_date(value)::timestamp)
    end
$$;

create or replace function silver.parse_timestamp(raw text)
returns timestamptz
language sql
immutable
parallel safe
as $$
    select case
        when btrim(raw, E' \t\r\n') collate "C" = raw then silver.parse_trimmed_timestamp(raw)
        else silver.parse_trimmed_timestamp(btrim(raw, E' \t\r\n'))
    end
$$;

-- ---------------------------------------------------------------- numbers
-- At most 9 digits, so the cast cannot overflow an integer.
create or replace function silver.parse_integer(raw text)
returns integer
language sql
immutable
parallel safe
as $$
    select case
        when btrim(raw, E' \t\r\n') collate "C" ~ '^[+-]?[0-9]{1,9}$' then btrim(raw, E' \t\r\n')::integer
    end
$$;

-- "$1,234.56", "-$19.99", "$-19.99", "19.9". At most 10 integer digits and
-- 2 decimals, so numeric(12, 2) always holds the value. Thousands separators,
-- when used, must group every 3 digits.
create or replace function silver.parse_money(raw text)
returns numeric(12, 2)
language sql
immutable
parallel safe
as $$
    select case
        when btrim(raw, E' \t\r\n') collate "C" ~ (
            '^([+-]?\$?|\$[+-])'
            '([0-9]{1,10}|[0-9]{1,3}(,[0-9]{3}){1,2}|[0-9],[0-9]{3},[0-9]{3},[0-9]{3})'
            '(\.[0-9]{1,2})?$'
        )
            then translate(btrim(raw, E' \t\r\n'), '$,', '')::numeric(12, 2)
    end
$$;

-- ---------------------------------------------------------------- regions
-- Compared on a normalized key (lower case, non-letters collapsed to one
-- space, trimmed), so 'pacific', ' PACIFIC', 'Mid Atlantic' and 'New-England'
-- all match. Each key is the normalized form of a name in
-- pipeline.sources.REGIONS; tests check the two lists agree.
create or replace function silver.canonical_region(raw text)
returns text
language sql
immutable
parallel safe
as $$
    select case btrim(regexp_replace(lower(raw collate "C"), '[^a-z]+', ' ', 'g'))
        when 'new england' then 'New England'
        when 'mid atlantic' then 'Mid-Atlantic'
        when 'east north central' then 'East North Central'
        when 'west north central' then 'West North Central'
        when 'south atlantic' then 'South Atlantic'
        when 'east south central' then 'East South Central'
        when 'west south central' then 'West South Central'
        when 'mountain' then 'Mountain'
        when 'pacific' then 'Pacific'
    end
$$;
