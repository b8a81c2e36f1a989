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
-- The parsers used to take the text alone. An old overload left beside the
-- new signatures would make every one-argument call ambiguous, so it goes,
-- with the helpers the new ones replace.
drop function if exists silver.parse_date(text);
drop function if exists silver.parse_timestamp(text);
drop function if exists silver.parse_trimmed_date(text);
drop function if exists silver.parse_trimmed_timestamp(text);
drop function if exists silver.is_timestamp_layout(text);
drop function if exists silver.utc_timestamp_or_null(date, integer, integer, integer, integer, integer);

-- make_date_or_null for the fixed-width fields YYYY, MM and DD, already
-- checked to be digits. They are compared as text, so that only a valid
-- date is cast: the casts are most of what parsing a date costs.
create or replace function silver.make_date_from_digits_or_null(year text, month text, day text)
returns date
language sql
immutable
parallel safe
as $$
    select case
        when year collate "C" >= '0001'
            and month collate "C" between '01' and '12'
            and day collate "C" between '01' and case month
                when '02' then '29' when '04' then '30' when '06' then '30' when '09' then '30' when '11' then '30'
                else '31'
            end
            -- 29 February, in a leap year only
            and (day <> '29' or month <> '02' or year::integer % 4 = 0 and (year::integer % 100 <> 0 or year::integer % 400 = 0))
            then make_date(year::integer, month::integer, day::integer)
    end
$$;

-- The wall-clock time an ISO 8601 / RFC 3339 timestamp writes, less the
-- offset it writes: its UTC time when it has an offset or Z, its local time
-- when it has no zone; NULL when a part is malformed or out of range. The
-- caller has matched '____-__-_____:__%' (date, separator, HH:MM) and found
-- the zone in the last zone_length characters: none (0), Z (1), +HH (3),
-- +HHMM (5) or +HH:MM (6), its Z or sign already checked. Between the
-- minutes and the zone come seconds_length characters: none, :SS, or :SS.f
-- with 1 to 9 fractional digits. Digits past the sixth (microseconds) are
-- dropped, as Python's datetime.fromisoformat drops them, so a time never
-- rounds up into the next second, or day.
create or replace function silver.iso_timestamp_or_null(value text, seconds_length integer, zone_length integer)
returns timestamp
language sql
immutable
parallel safe
as $$
    select case
        -- a case of its own, so that no substr below gets a negative length, not even folded at plan time
        when seconds_length in (0, 3) or seconds_length between 5 and 13 then
            case
                when substr(value, 11, 1) in ('T', 't', ' ')
                    and (seconds_length = 0 or substr(value, 17, 1) = ':')
                    and (seconds_length < 5 or substr(value, 20, 1) = '.')
                    and (zone_length < 6 or substr(value, 20 + seconds_length, 1) = ':')
                    and silver.is_digits(
                        substr(value, 1, 4) || substr(value, 6, 2) || substr(value, 9, 2)
                        || substr(value, 12, 2) || substr(value, 15, 2)
                        || substr(value, 18, least(seconds_length, 2))
                        || substr(value, 21, greatest(seconds_length - 4, 0))
                        -- the offset's hours and minutes
                        || substr(value, 18 + seconds_length, case when zone_length >= 3 then 2 else 0 end)
                        || case when zone_length >= 5 then right(value, 2) else '' end
                    )
                    and substr(value collate "C", 12, 2) <= '23'
                    and substr(value collate "C", 15, 2) <= '59'
                    and substr(value collate "C", 18, least(seconds_length, 2)) <= '59'
                    and substr(value collate "C", 18 + seconds_length, least(zone_length, 2)) <= '23'
                    and (zone_length < 5 or right(value collate "C", 2) <= '59')
                    then silver.make_date_from_digits_or_null(
                        substr(value, 1, 4), substr(value, 6, 2), substr(value, 9, 2)
                    ) + make_interval(
                        hours => substr(value, 12, 2)::integer,
                        mins => substr(value, 15, 2)::integer - case
                            when zone_length >= 5
                                then 60 * substr(value, 17 + seconds_length, 3)::integer
                                    + (substr(value, 17 + seconds_length, 1) || right(value, 2))::integer
                            when zone_length = 3 then 60 * substr(value, 17 + seconds_length, 3)::integer
                            else 0
                        end,
                        secs => case
                            when seconds_length > 0
                                then (
                                    substr(value, 18, 2) || '.' || substr(value, 21, least(greatest(seconds_length - 4, 0), 6))
                                )::double precision
                            else 0
                        end
                    )
            end
    end
$$;

-- An ISO 8601 / RFC 3339 timestamp (the caller has matched
-- '____-__-_____:__%') as an instant: in the zone it writes, else as
-- wall-clock time in zone. The zone is read off the end: a Z, or a sign 6, 5
-- or 3 characters from the end (+HH:MM, +HHMM, +HH). Seconds hold only
-- digits, ':' and '.', so a valid value has exactly one reading.
create or replace function silver.iso_instant_or_null(value text, zone text)
returns timestamptz
language sql
immutable
parallel safe
as $$
    select case
        -- the most common layouts first, every length known, so that most of the arithmetic folds away
        when value collate "C" like '____-__-_____:__:__Z'
            then timezone('UTC', silver.iso_timestamp_or_null(value, 3, 1))
        when value collate "C" like '____-__-_____:__:__'
            then timezone(zone, silver.iso_timestamp_or_null(value, 3, 0))
        when value collate "C" like '____-__-_____:__:__+__:__' or value collate "C" like '____-__-_____:__:__-__:__'
            then timezone('UTC', silver.iso_timestamp_or_null(value, 3, 6))
        when right(value collate "C", 1) in ('Z', 'z')
            then timezone('UTC', silver.iso_timestamp_or_null(value, length(value) - 17, 1))
        when substr(value collate "C", length(value) - 5, 1) in ('+', '-')
            then timezone('UTC', silver.iso_timestamp_or_null(value, length(value) - 22, 6))
        when substr(value collate "C", length(value) - 4, 1) in ('+', '-')
            then timezone('UTC', silver.iso_timestamp_or_null(value, length(value) - 21, 5))
        when substr(value collate "C", length(value) - 2, 1) in ('+', '-')
            then timezone('UTC', silver.iso_timestamp_or_null(value, length(value) - 19, 3))
        else timezone(zone, silver.iso_timestamp_or_null(value, length(value) - 16, 0))
    end
$$;

-- Seconds since 1970-01-01 UTC: digits, maybe a leading '-', maybe a
-- fraction of up to 9 digits (past the sixth dropped), within the years 1 to
-- 9999 the other layouts allow.
create or replace function silver.epoch_or_null(value text)
returns timestamptz
language sql
immutable
parallel safe
as $$
    select case
        when value collate "C" ~ '^-?[0-9]{1,12}(\.[0-9]{1,9})?$' then
            case
                when value::numeric between -62135596800 and 253402300799.999999999
                    then timezone(
                        'UTC',
                        timestamp '1970-01-01' + make_interval(
                            days => floor(value::numeric / 86400)::integer,
                            secs => (trunc(value::numeric, 6) - 86400 * floor(value::numeric / 86400))::double precision
                        )
                    )
            end
    end
$$;

-- value is already trimmed. Each layout is recognised before anything is
-- cast: the numeric ones with like and a digit check on their fixed
-- positions, the others with a short regular expression behind a like
-- guard (a like miss costs next to nothing, a regular expression does not;
-- an alternation of twelve month names costs three times a letter class, so
-- the name is checked by lookup instead). day_first decides between MM/DD
-- and DD/MM and never guesses: 13/01/2025 is no date when months come first.
create or replace function silver.parse_trimmed_date(value text, day_first boolean)
returns date
language sql
immutable
parallel safe
as $$
    select case
        -- YYYY-MM-DD
        when value collate "C" like '____-__-__'
            and silver.is_digits(substr(value, 1, 4) || substr(value, 6, 2) || substr(value, 9, 2))
            then silver.make_date_from_digits_or_null(substr(value, 1, 4), substr(value, 6, 2), substr(value, 9, 2))
        -- the date an ISO 8601 timestamp writes, whatever its zone (no conversion)
        when value collate "C" like '____-__-_____:__%'
            then case
                when silver.iso_instant_or_null(value, 'UTC') is not null
                    then make_date(substr(value, 1, 4)::integer, substr(value, 6, 2)::integer, substr(value, 9, 2)::integer)
            end
        -- MM/DD/YYYY, or DD/MM/YYYY when day_first
        when value collate "C" like '__/__/____'
            and silver.is_digits(substr(value, 1, 2) || substr(value, 4, 2) || substr(value, 7, 4))
            then silver.make_date_from_digits_or_null(
                substr(value, 7, 4),
                substr(value, case when day_first then 4 else 1 end, 2),
                substr(value, case when day_first then 1 else 4 end, 2)
            )
        -- YYYY/MM/DD
        when value collate "C" like '____/__/__'
            and silver.is_digits(substr(value, 1, 4) || substr(value, 6, 2) || substr(value, 9, 2))
            then silver.make_date_from_digits_or_null(substr(value, 1, 4), substr(value, 6, 2), substr(value, 9, 2))
        -- M/D/YYYY (or D/M/YYYY) with one-digit parts
        when value collate "C" like '%/%/____'
            and value collate "C" ~ '^[0-9]{1,2}/[0-9]{1,2}/[0-9]{4}$'
            then silver.make_date_or_null(
                right(value, 4)::integer,
                split_part(value, '/', case when day_first then 2 else 1 end)::integer,
                split_part(value, '/', case when day_first then 1 else 2 end)::integer
            )
        -- DD.MM.YYYY (or D.M.YYYY), only when day_first
        when day_first
            and value collate "C" like '%.%.____'
            and value collate "C" ~ '^[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{4}$'
            then silver.make_date_or_null(
                right(value, 4)::integer, split_part(value, '.', 2)::integer, split_part(value, '.', 1)::integer
            )
        -- YYYYMMDD, ISO 8601's basic format
        when value collate "C" like '________' and silver.is_digits(value)
            then silver.make_date_from_digits_or_null(left(value, 4), substr(value, 5, 2), substr(value, 7, 2))
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
create or replace function silver.parse_date(raw text, day_first boolean default false)
returns date
language sql
immutable
parallel safe
as $$
    select case
        when btrim(raw, E' \t\r\n') collate "C" = raw then silver.parse_trimmed_date(raw, day_first)
        else silver.parse_trimmed_date(btrim(raw, E' \t\r\n'), day_first)
    end
$$;

-- value is already trimmed. A value of digits alone (maybe signed, maybe
-- with a fraction) is seconds since 1970 when the source says so, and never
-- a date (20250307 is a date only to parse_date).
create or replace function silver.parse_trimmed_timestamp(value text, zone text, epoch boolean)
returns timestamptz
language sql
immutable
parallel safe
as $$
    select case
        when value collate "C" like '____-__-_____:__%' then silver.iso_instant_or_null(value, zone)
        when epoch and silver.is_digits(replace(ltrim(value, '-'), '.', '')) then silver.epoch_or_null(value)
        when value collate "C" like '________' and silver.is_digits(value) then null
        -- a bare date: midnight in zone
        else timezone(zone, silver.parse_trimmed_date(value, false)::timestamp)
    end
$$;

-- zone: the IANA name (or anything else timezone() takes) that a value
-- written without a zone is wall-clock time in. PostgreSQL reads a time
-- that a change to summer time skips with the offset from before the
-- change, and one that the change back repeats with the offset from after
-- it. An unknown zone is a configuration error, not a bad value: it raises
-- ("time zone ... not recognized") whatever the values, at plan time when
-- zone is a constant, which then costs nothing per row.
create or replace function silver.parse_timestamp(raw text, zone text default 'UTC', epoch boolean default false)
returns timestamptz
language sql
immutable
parallel safe
as $$
    select case
        when zone is not null and timezone(zone, timestamp '2000-01-01') is null then null
        when btrim(raw, E' \t\r\n') collate "C" = raw then silver.parse_trimmed_timestamp(raw, zone, epoch)
        else silver.parse_trimmed_timestamp(btrim(raw, E' \t\r\n'), zone, epoch)
    end
$$;

-- ---------------------------------------------------------------- numbers
-- At most 9 digits, so the cast cannot overflow an integer. A zero fraction
-- (3.0, 3.00) is a whole number: pandas writes an integer column that holds
-- a null as floats.
create or replace function silver.parse_integer(raw text)
returns integer
language sql
immutable
parallel safe
as $$
    select case
        when btrim(raw, E' \t\r\n') collate "C" ~ '^[+-]?[0-9]{1,9}$' then btrim(raw, E' \t\r\n')::integer
        when btrim(raw, E' \t\r\n') collate "C" ~ '^[+-]?[0-9]{1,9}\.0+$'
            then split_part(btrim(raw, E' \t\r\n'), '.', 1)::integer
    end
$$;

drop function if exists silver.parse_money(text);

-- The regular expression of the number in an amount: at most 10 integer
-- digits, so numeric(12, 2) always holds the value; thousands separators,
-- when used, group every 3 digits, one separator throughout: ',' with a
-- decimal point, or '.', a space, a no-break or a narrow no-break space with
-- a decimal comma. Past 2 decimals only zeros: 2.5500 is 2.55, and 2.555 no
-- amount (money is never rounded silently).
create or replace function silver.money_number_pattern(decimal_comma boolean)
returns text
language sql
immutable
parallel safe
as $$
    select case
        when decimal_comma then
            '(?:[0-9]{1,10}'
            '|[0-9]{1,3}(?:\.[0-9]{3}){1,2}|[0-9](?:\.[0-9]{3}){3}'
            '|[0-9]{1,3}(?: [0-9]{3}){1,2}|[0-9](?: [0-9]{3}){3}'
            '|[0-9]{1,3}(?:\u00a0[0-9]{3}){1,2}|[0-9](?:\u00a0[0-9]{3}){3}'
            '|[0-9]{1,3}(?:\u202f[0-9]{3}){1,2}|[0-9](?:\u202f[0-9]{3}){3}'
            ')(?:,[0-9]{1,2}0*)?'
        else '(?:[0-9]{1,10}|[0-9]{1,3}(?:,[0-9]{3}){1,2}|[0-9](?:,[0-9]{3}){3})(?:\.[0-9]{1,2}0*)?'
    end
$$;

-- "1234.56", "-19.99", "$1,234.56", "-$19.99", "$-19.99", "19.99 €", and
-- with decimal_comma "1.234,56" or "12,50 €". A currency symbol ($, €, £)
-- comes before the number, either side of its sign, or after it, maybe with
-- a space between. A plain number (no symbol, no space) is checked with a
-- smaller regular expression first, as a regular expression costs by its size.
create or replace function silver.parse_money(raw text, decimal_comma boolean default false)
returns numeric(12, 2)
language sql
immutable
parallel safe
as $$
    select case
        when btrim(raw, E' \t\r\n') collate "C" ~ ('^[+-]?' || silver.money_number_pattern(decimal_comma) || '$')
            then case
                when decimal_comma then translate(btrim(raw, E' \t\r\n'), E',. \u00a0\u202f', '.')
                else replace(btrim(raw, E' \t\r\n'), ',', '')
            end::numeric(12, 2)
        when btrim(raw, E' \t\r\n') collate "C" ~ replace(
            '^(?:(?:[+-]?(?:[$\u20ac\u00a3][ \u00a0\u202f]?)?|[$\u20ac\u00a3][ \u00a0\u202f]?[+-])#'
            '|[+-]?#[ \u00a0\u202f]?[$\u20ac\u00a3])$',
            '#',
            silver.money_number_pattern(decimal_comma)
        )
            then translate(
                btrim(raw, E' \t\r\n'),
                case when decimal_comma then E',.$\u20ac\u00a3 \u00a0\u202f' else E'$\u20ac\u00a3, \u00a0\u202f' end,
                case when decimal_comma then '.' else '' end
            )::numeric(12, 2)
    end
$$;

-- ---------------------------------------------------------------- regions
-- canonical_region gave way to the per-source vocabularies of sources.toml.
drop function if exists silver.canonical_region(text);

-- Vocabularies (sources.toml `vocabularies`): a value is matched onto its
-- canonical spelling by a normalized key: ASCII letters lower-cased, every run
-- of characters other than ASCII letters and digits one space, trimmed. So 'pacific', ' PACIFIC', 'Mid
-- Atlantic' and 'New-England' all match their division. pipeline.core.sources
-- computes the same key in Python to refuse two canonical values sharing a key.
create or replace function silver.vocabulary_key(raw text)
returns text
language sql
immutable
parallel safe
as $$
    select nullif(btrim(regexp_replace(lower(raw collate "C"), '[^a-z0-9]+', ' ', 'g')), '')
$$;
