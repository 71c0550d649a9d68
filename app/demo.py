"""Demo data: about 5,000 stores over 200 cities and one account for every role."""

from __future__ import annotations

from flask import Flask

from geo.demo import generate_stores

DEMO_PASSWORD = "footfall-demo"
DEMO_ACCOUNTS = (
    ("shopper@demo.footfall.test", "shopper", None),
    ("staff@demo.footfall.test", "staff", "st-00001"),
    ("marketer@demo.footfall.test", "marketer", None),
    ("host@demo.footfall.test", "host", None),
    ("admin@demo.footfall.test", "admin", None),
)


def seed_demo(app: Flask, *, stores: int = 5000) -> dict:
    """Load the demo stores and accounts unless they are there already."""
    catalog = app.extensions["stores"]
    accounts = app.extensions["accounts"]
    written = 0
    generated = generate_stores(stores)
    if not catalog.exists(generated[-1]["id"]):
        report = catalog.import_rows(
            ((f"store {i}", s) for i, s in enumerate(generated)), partial=False
        )
        written = report.written
        if report.errors:
            raise RuntimeError(f"demo stores failed validation: {report.errors[:3]}")
    staff_store = next(s for s in generated if s["city"] == "Shanghai")["id"]
    created = []
    for email, role, store in DEMO_ACCOUNTS:
        if accounts.find_by_email(email) is None:
            accounts.create_user(email, DEMO_PASSWORD, role,
                                 store_id=staff_store if store else None)
            created.append(email)
    shopper = accounts.find_by_email(DEMO_ACCOUNTS[0][0])
    app.extensions["geo"].set_consent(shopper["id"], True)
    return {"stores_written": written, "stores_total": len(generated),
            "accounts_created": created, "staff_store": staff_store}
