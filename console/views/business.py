"""Business KPIs: revenue by month and region, products, regions, CLV and P(alive), cohort retention."""

import altair as alt
import pandas as pd
import streamlit as st

from console import data, ui

TOP_PRODUCTS = 10
TOP_CUSTOMERS = 20

st.title("Business KPIs")
ui.require_runs()
masked = ui.masked()

kpis = data.query("kpis")
if kpis.empty:
    st.info("Gold holds no figures yet: the first successful run fills them (see Runs for the latest run).")
    st.stop()
latest = kpis.iloc[0]
st.caption(f"Every order up to extract date {latest['run_date']}. Region is the customer's region at the order date.")
tiles = st.columns(5)
tiles[0].metric("Revenue", ui.tile_money(latest["revenue"]), border=True, help=ui.money(latest["revenue"]))
tiles[1].metric("Orders", ui.number(latest["orders"]), border=True)
tiles[2].metric(
    "Customers",
    ui.number(latest["customers"]),
    border=True,
    help=f"Customers who ever bought; {ui.number(latest['active_customers'])} of them in the last 90 days.",
)
tiles[3].metric("Average order value", ui.tile_money(latest["average_order_value"]), border=True)
tiles[4].metric("Repeat purchase rate", ui.percent(latest["repeat_purchase_rate"]), border=True)
with st.popover("How are these computed?", icon=":material/functions:"):
    st.code(data.sql_text("kpi_check"), language="sql")
    # Recomputing reads every fact row (seconds on 1M lines): only on request, not on every visit.
    if st.button("Recompute from gold.fact_sales", key="business_kpi_check"):
        check = data.query("kpi_check", run_date=latest["run_date"]).iloc[0]
        st.markdown(
            f"Read from `gold.business_kpis` for {latest['run_date']}, which BusinessKpis builds from "
            f"`gold.fact_sales`. The same figures recomputed from the {ui.number(check['fact_rows'])} fact "
            f"rows up to that date: revenue {ui.money(check['revenue'])} (sum of amount = quantity x unit "
            f"price), orders {ui.number(check['orders'])} (distinct order_id), customers "
            f"{ui.number(check['customers'])} (distinct customer_id), average order value "
            f"{ui.money(check['average_order_value'])} (revenue / orders)."
        )

st.subheader("Revenue by month and region")
monthly = data.query("revenue_by_month")
regions_all = sorted(monthly["region"].dropna().unique())
if "business_regions" not in st.session_state and st.query_params.get_all("region"):
    st.session_state["business_regions"] = [r for r in st.query_params.get_all("region") if r in regions_all]
picked_regions = st.multiselect(
    "Regions",
    regions_all,
    key="business_regions",
    help="Empty: every region. The choice is in the page's URL, to share.",
)
st.query_params["region"] = picked_regions
if picked_regions:
    monthly = monthly[monthly["region"].isin(picked_regions)]
# The month of the KPI date is partial: it holds orders up to that date only.
as_of = pd.Timestamp(latest["run_date"])
month_end = as_of + pd.offsets.MonthEnd(0)
monthly = monthly.assign(month=monthly["month_start"].astype(str).str[:7])
monthly["month"] = monthly["month"].where(
    ~((pd.to_datetime(monthly["month_start"]).dt.to_period("M") == as_of.to_period("M")) & (as_of < month_end)),
    monthly["month"] + f" (partial, to {as_of:%d})",
)
st.altair_chart(
    alt.Chart(monthly)
    .mark_bar()
    .encode(
        x=alt.X("month:O", title="month", axis=alt.Axis(labelAngle=-45), sort=alt.SortField("month_start")),
        y=alt.Y("sum(revenue):Q", title="revenue", axis=alt.Axis(format=ui.MONEY_FORMAT)),
        color=alt.Color("region:N", title="region"),
        tooltip=[
            "month",
            "region",
            alt.Tooltip("revenue:Q", format=ui.MONEY_FORMAT),
            alt.Tooltip("orders:Q", format=","),
            alt.Tooltip("customers:Q", format=","),
        ],
    )
    .properties(height=320),
    width="stretch",
)
if monthly["month"].str.contains("partial").any():
    st.caption(f"The last month is partial: orders up to the KPI date {latest['run_date']}.")

left, right = st.columns(2)
with left:
    st.subheader("Top products")
    products = data.query("top_products", limit=TOP_PRODUCTS)
    st.altair_chart(
        alt.Chart(products)
        .mark_bar()
        .encode(
            x=alt.X("revenue:Q", title="revenue"),
            y=alt.Y("product_name:N", sort="-x", title=None, axis=alt.Axis(labelOverlap=False)),
            color=alt.Color("category:N", title="category"),
            tooltip=[
                "product_id",
                "product_name",
                "category",
                alt.Tooltip("revenue:Q", format=ui.MONEY_FORMAT),
                "total_orders",
                "total_quantity_sold",
            ],
        )
        .properties(height=max(120, 28 * len(products))),
        width="stretch",
    )
    st.dataframe(
        products,
        hide_index=True,
        column_config={
            "product_id": "Product",
            "product_name": "Name",
            "category": "Category",
            "total_orders": "Orders",
            "total_quantity_sold": "Quantity",
            "customers": "Customers",
            "revenue": st.column_config.NumberColumn("Revenue", format=ui.MONEY_COLUMN_FORMAT),
            "average_unit_price": st.column_config.NumberColumn("Avg unit price", format=ui.MONEY_COLUMN_FORMAT),
        },
    )
with right:
    st.subheader("Regional analytics")
    regions = data.query("regional_analytics")
    st.altair_chart(
        alt.Chart(regions)
        .mark_bar()
        .encode(
            x=alt.X("revenue:Q", title="revenue"),
            y=alt.Y("region:N", sort="-x", title=None, axis=alt.Axis(labelOverlap=False)),
            tooltip=[
                "region",
                alt.Tooltip("revenue:Q", format=ui.MONEY_FORMAT),
                "customers",
                "orders",
                alt.Tooltip("revenue_share:Q", format=".1%"),
            ],
        )
        .properties(height=max(120, 28 * len(regions))),
        width="stretch",
    )
    st.dataframe(
        regions,
        hide_index=True,
        column_config={
            "region": "Region",
            "customers": "Customers",
            "orders": "Orders",
            "revenue": st.column_config.NumberColumn("Revenue", format=ui.MONEY_COLUMN_FORMAT),
            "average_order_value": st.column_config.NumberColumn("Avg order value", format=ui.MONEY_COLUMN_FORMAT),
            "revenue_share": st.column_config.NumberColumn("Revenue share", format="percent"),
        },
    )

st.subheader("Customer lifetime value")
clv = data.query("clv_as_of").iloc[0]
if not clv["customers"]:
    st.info("No CLV yet: the CustomerClv task fills it on the next successful run.")
else:
    predicted = int(clv["predicted_customers"]) > 0
    measure = "predicted" if predicted else "historical"
    st.caption(
        f"As of {clv['as_of_date']}: {ui.number(clv['customers'])} customers, "
        f"{ui.number(clv['predicted_customers'])} with a prediction; average predicted CLV "
        f"{ui.money(clv['average_predicted_clv'])}, average historical CLV "
        f"{ui.money(clv['average_historical_clv'])}."
    )
    models = data.query("clv_models")
    if not predicted:
        reasons = "; ".join(models["message"].dropna().astype(str)) or "the models could not be fit"
        st.warning(
            f"No predictions for this date ({reasons}). The distribution and the ranking below use "
            "historical CLV (spend so far).",
            icon=":material/info:",
        )
    else:
        labels = {"bg_nbd": "BG/NBD", "gamma_gamma": "Gamma-Gamma"}
        fits = [
            f"{labels.get(row.model, row.model)}: "
            + (f"penalizer {row.penalizer:g}" if row.penalizer and row.penalizer > 0 else "no penalty")
            + (f" ({row.penalizer_reason})" if isinstance(row.penalizer_reason, str) else "")
            for row in models.itertuples()
        ]
        st.caption("Model fits, maximum likelihood: " + "; ".join(fits) + ".")
    left, right = st.columns(2)
    with left:
        st.markdown(f"**Distribution of {measure} CLV**")
        bins = data.query("clv_distribution", measure=measure)
        st.altair_chart(
            alt.Chart(bins)
            .mark_bar()
            .encode(
                x=alt.X("bin_start:Q", title=f"{measure} CLV", bin="binned"),
                x2="bin_plot_end:Q",
                y=alt.Y("customers:Q", title="customers"),
                tooltip=[
                    alt.Tooltip("bin_start:Q", format=",.2f", title="from"),
                    alt.Tooltip("bin_end:Q", format=",.2f", title="to (blank: and above)"),
                    "customers",
                ],
            )
            .properties(height=260),
            width="stretch",
        )
        st.caption("20 equal bins up to the 99th percentile; the last bin holds everything above it.")
    with right:
        st.markdown("**P(alive) segments**")
        segments = data.query("p_alive_segments")
        st.dataframe(
            segments.drop(columns=["segment_order"]),
            hide_index=True,
            column_config={
                "segment": "Segment",
                "customers": "Customers",
                "average_predicted_clv": st.column_config.NumberColumn(
                    "Avg predicted CLV", format=ui.MONEY_COLUMN_FORMAT
                ),
                "predicted_clv": st.column_config.NumberColumn("Predicted CLV (sum)", format=ui.MONEY_COLUMN_FORMAT),
                "average_historical_clv": st.column_config.NumberColumn(
                    "Avg historical CLV", format=ui.MONEY_COLUMN_FORMAT
                ),
            },
        )
        st.caption("P(alive) is the BG/NBD probability that a customer still buys.")
    st.markdown(f"**Top {TOP_CUSTOMERS} customers by {measure} CLV**")
    customers = data.query("top_customers", masked=masked, limit=TOP_CUSTOMERS)
    st.dataframe(
        customers,
        hide_index=True,
        column_config={
            "customer_id": "Customer",
            "first_name": "First name",
            "last_name": "Last name",
            "email": "E-mail",
            "phone": "Phone",
            "region": "Region",
            "frequency": "Repeat days",
            "predicted_clv": st.column_config.NumberColumn("Predicted CLV", format=ui.MONEY_COLUMN_FORMAT),
            "historical_clv": st.column_config.NumberColumn("Historical CLV", format=ui.MONEY_COLUMN_FORMAT),
            "p_alive": st.column_config.NumberColumn("P(alive)", format="%.3f"),
            "expected_purchases": st.column_config.NumberColumn("Expected purchases", format=ui.MONEY_COLUMN_FORMAT),
            "as_of_date": "As of",
        },
    )
    if masked:
        st.caption("Names, e-mail addresses and phone numbers are masked: log in as ops to see them.")

st.subheader("Cohort retention")
cohorts = data.query("cohort_retention")
if cohorts.empty:
    st.info("No cohorts yet.")
else:
    cohorts = cohorts.assign(cohort=cohorts["cohort_month"].astype(str).str[:7])
    base = alt.Chart(cohorts).encode(
        x=alt.X("months_since_first:O", title="months since first purchase"),
        y=alt.Y("cohort:O", title="cohort (month of first purchase)"),
    )
    heatmap = base.mark_rect().encode(
        color=alt.Color(
            "retention_rate:Q",
            title="retention",
            scale=alt.Scale(scheme="blues", domain=[0, 1]),
            legend=alt.Legend(format="%"),
        ),
        tooltip=[
            "cohort",
            "months_since_first",
            "cohort_size",
            "active_customers",
            alt.Tooltip("retention_rate:Q", format=".1%"),
            alt.Tooltip("revenue:Q", format=ui.MONEY_FORMAT),
        ],
    )
    labels = base.mark_text(fontSize=9).encode(
        text=alt.Text("retention_rate:Q", format=".0%"),
        color=alt.condition(alt.datum.retention_rate > 0.5, alt.value("white"), alt.value("black")),
    )
    st.altair_chart((heatmap + labels).properties(height=max(160, 18 * cohorts["cohort"].nunique())), width="stretch")
