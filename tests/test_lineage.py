"""meta.lineage: every task run records what it read and the table it wrote, in its own transaction."""

from __future__ import annotations

from datetime import date

DAY1, DAY2 = date(2026, 11, 20), date(2026, 11, 21)


def expected_lineage(landing, day: date) -> dict[tuple[str, str], set[str]]:
    """(task family, table) -> what it reads, from the console's walk of MasterTask's requirements: a landing
    file node is that file under the date's folder; a chained family also reads its own table."""
    from console.graph import task_graph

    graph = task_graph()
    expected: dict[tuple[str, str], set[str]] = {}
    for family in graph.task_families:
        node = graph.nodes[family]
        reads = set()
        for upstream, downstream in graph.edges:
            if downstream != family:
                continue
            source = graph.nodes[upstream]
            reads.add(f"file:{landing / day.isoformat() / source.label}" if source.layer == "landing" else source.table)
        if family in graph.chained:
            reads.add(node.table)
        expected[(family, node.table)] = reads
    return expected


def test_every_task_run_records_what_it_read_and_wrote(warehouse, query, reliability_landing):
    from pipeline.operations.runner import run_pipeline

    for day in (DAY1, DAY2):
        result = run_pipeline(day, landing=reliability_landing, trigger="test")
        assert result.success, result.luigi_summary
    rows = query(
        """select l.task_family, l.downstream, l.upstream, l.run_date, t.target_table, t.status
                    from meta.lineage as l join meta.task_runs as t using (task_run_id)
                    where l.run_id = %s""",
        (result.run_id,),
    )
    recorded: dict[tuple[str, str], set[str]] = {}
    for family, downstream, upstream, run_date, target_table, status in rows:
        assert (run_date, target_table, status) == (DAY2, downstream, "success"), family
        recorded.setdefault((family, downstream), set()).add(upstream)
    assert recorded == expected_lineage(reliability_landing, DAY2)

    # By hand: silver sales read bronze's sales and the silver customers and products it checks keys against;
    # silver customers also read their own previous date (the versions they continue).
    assert recorded[("SilverSales", "silver.sales")] == {"bronze.erp_sales_raw", "silver.customers", "silver.products"}
    assert recorded[("SilverCustomers", "silver.customers")] == {"bronze.crm_customers_raw", "silver.customers"}
    sales_file = reliability_landing / DAY2.isoformat() / "erp_sales.csv"
    assert recorded[("ErpSalesRaw", "bronze.erp_sales_raw")] >= {f"file:{sales_file}"}
    # Every task run of the run that did its work has its lineage; a run of the first date has its own rows.
    ran = query(
        "select count(distinct task_run_id) from meta.task_runs where run_id = %s and status = 'success'",
        (result.run_id,),
    )
    assert query("select count(distinct task_run_id) from meta.lineage where run_id = %s", (result.run_id,)) == ran
    assert query("select count(*) > 0 from meta.lineage where run_date = %s", (DAY1,)) == [(True,)]


def test_a_failed_task_records_no_lineage(warehouse, query, tmp_path):
    from pipeline.operations.runner import run_pipeline
    from tests.conftest import write_landing

    write_landing(
        tmp_path,
        DAY1.isoformat(),
        {"crm_customers.csv": "not,the,contract\n1,2,3\n", "erp_products.csv": "x\n", "erp_sales.csv": "y\n"},
    )
    result = run_pipeline(DAY1, landing=tmp_path, trigger="test")
    assert not result.success
    failed = query(
        """select t.task_family, count(l.upstream) from meta.task_runs as t
                      left join meta.lineage as l using (task_run_id)
                      where t.run_id = %s and t.status = 'failed' group by 1""",
        (result.run_id,),
    )
    assert failed and all(count == 0 for _, count in failed), failed
