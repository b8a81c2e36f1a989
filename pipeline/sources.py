"""The landing-file contract: which extracts exist and which columns each carries.

Every other module (generator, bronze loader, silver SQL, tests) reads the
column lists from here, so the contract is written down exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    name: str  # short name used in task names and metrics, e.g. "crm_customers"
    file_stem: str  # landing file name without extension
    formats: tuple[str, ...]  # accepted file formats, in order of preference
    columns: tuple[str, ...]  # required header, in contract order
    business_key: str

    @property
    def bronze_table(self) -> str:
        return f"{self.name}_raw"

    def file_names(self) -> tuple[str, ...]:
        return tuple(f"{self.file_stem}.{fmt}" for fmt in self.formats)


CRM_CUSTOMERS = Source(
    name="crm_customers",
    file_stem="crm_customers",
    formats=("csv", "jsonl"),
    columns=(
        "customer_id",
        "first_name",
        "last_name",
        "email",
        "phone",
        "address",
        "city",
        "state",
        "region",
        "signup_date",
        "updated_at",
    ),
    business_key="customer_id",
)

ERP_PRODUCTS = Source(
    name="erp_products",
    file_stem="erp_products",
    formats=("csv",),
    columns=("product_id", "product_name", "category", "unit_cost", "list_price", "updated_at"),
    business_key="product_id",
)

ERP_SALES = Source(
    name="erp_sales",
    file_stem="erp_sales",
    formats=("csv",),
    columns=("order_id", "customer_id", "product_id", "order_date", "quantity", "unit_price"),
    business_key="order_id",
)

SOURCES: dict[str, Source] = {s.name: s for s in (CRM_CUSTOMERS, ERP_PRODUCTS, ERP_SALES)}

# The nine canonical regions (US Census divisions). Silver maps raw spellings onto these.
REGIONS: tuple[str, ...] = (
    "New England",
    "Mid-Atlantic",
    "East North Central",
    "West North Central",
    "South Atlantic",
    "East South Central",
    "West South Central",
    "Mountain",
    "Pacific",
)
