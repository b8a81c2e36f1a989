-- For each cohort (month of a customer's first purchase) and each month since:
-- the customers who bought that month and their revenue, kept incrementally as
-- in agg_daily_sales (a customer's cohort is taken from all their lines, which
-- each batch holds before and after), then the cohort's size (every member buys
-- in month 0) and the retention rate.
-- The cohorts (one row per customer) join back to the customer-months by hash
-- (CohortRetention runs this with enable_mergejoin off): the planner cannot see
-- their size through the CTE and would sort both sides.
with

facts as not materialized (
    select batch_id, sign, customer_id, date_trunc('month', order_date)::date as order_month, amount, is_changed
    from fact_lines
),

-- A first build: every customer-month, and each customer's cohort from them.
all_customer_months as (
    select
        batch_id,
        sign,
        customer_id,
        order_month,
        sum(amount) as revenue
    from facts
    where %(full)s
    group by batch_id, sign, customer_id, order_month
),

cohorts as (
    select batch_id, sign, customer_id, min(order_month) as cohort_month
    from all_customer_months
    where %(full)s
    group by batch_id, sign, customer_id
    union all
    select batch_id, sign, customer_id, min(order_month) as cohort_month
    from facts
    where not %(full)s
    group by batch_id, sign, customer_id
),

-- A catch-up: customers whose cohort a batch changed (or who are on one side
-- only) count in every month; the others only in the months their changed lines
-- touch.
moved_customers as (
    select batch_id, customer_id
    from cohorts
    group by batch_id, customer_id
    having count(*) = 1 or min(cohort_month) <> max(cohort_month)
),

touched_months as (
    select distinct batch_id, customer_id, order_month from facts where is_changed
),

changed_customer_months as (
    select
        batch_id,
        sign,
        customer_id,
        order_month,
        sum(amount) as revenue
    from facts
    where not %(full)s
        and ((batch_id, customer_id) in (select * from moved_customers)
             or (batch_id, customer_id, order_month) in (select * from touched_months))
    group by batch_id, sign, customer_id, order_month
),

customer_months as (
    select * from all_customer_months
    union all
    select * from changed_customer_months
),

-- A customer counts +1 in a (cohort, month) for each batch that has their lines
-- in that month after the change, -1 for each that had them before.
final as (
    select
        (extract(year from age(customer_months.order_month, cohorts.cohort_month)) * 12
            + extract(month from age(customer_months.order_month, cohorts.cohort_month)))::integer
            as months_since_first,
        sum(customer_months.sign) as active_customers,
        sum(customer_months.sign * customer_months.revenue) as revenue,
        cohorts.cohort_month
    from customer_months
    inner join cohorts
        on customer_months.customer_id = cohorts.customer_id
        and customer_months.batch_id = cohorts.batch_id
        and customer_months.sign = cohorts.sign
    group by cohorts.cohort_month, customer_months.order_month
    having (sum(customer_months.sign), sum(customer_months.sign * customer_months.revenue)) <> (0, 0)
)

-- cohort_size and retention_rate follow from the sums (sql/gold/derived/cohort_retention.sql)
select months_since_first, 0 as cohort_size, active_customers, 0 as retention_rate, revenue, cohort_month
from final
