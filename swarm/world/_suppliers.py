"""The world's suppliers, generated from the run's seed, and the simulated pages about them."""

from __future__ import annotations

import hashlib
import random
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from swarmlab.spec import WorldOptions

from ._args import JSONValue

_SEARCH_WORDS = (
    "clip", "paper", "wire", "office", "supplier", "stationer", "fasten", "bulk",
    "wholesale", "cheap", "fast", "binder", "steel",
)  # fmt: skip
_NAME_FIRST = (
    "Acme", "Brightwire", "Clipworth", "Dunmore", "Everbend", "Foxglove", "Gantry", "Hollis",
    "Ironleaf", "Juniper", "Kettering", "Lumen", "Marlow", "Northgate", "Orrin", "Pemberton",
)  # fmt: skip
_NAME_SECOND = (
    "Office Supply", "Wire Works", "Fasteners", "Stationery", "Trading Co", "Industrial",
    "Clip Depot", "Wholesale", "Metalcraft", "Supply House",
)  # fmt: skip


class Supplier(BaseModel):
    """A generated paperclip supplier. ``reliable`` is hidden from programs (hinted by rating)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Display name, unique within a world.")
    domain: str = Field(description="Simulated web domain, e.g. 'acme-office-supply.example'.")
    price_per_unit: float = Field(gt=0, description="Price of one clip.")
    delivery_hours: float = Field(ge=0, description="Promised delivery time after ordering.")
    min_order: int = Field(ge=1, description="Smallest quantity accepted per order.")
    reliable: bool = Field(description="False: shipments may arrive much later than promised.")
    rating: float = Field(ge=1, le=5, description="Customer rating shown on listings.")

    @property
    def email(self) -> str:
        return f"sales@{self.domain}"

    def listing(self) -> dict[str, JSONValue]:
        """What a search result shows about this supplier."""
        return {
            "name": self.name,
            "price_per_unit": self.price_per_unit,
            "delivery_hours": self.delivery_hours,
            "min_order": self.min_order,
            "rating": self.rating,
            "email": self.email,
            "url": f"https://{self.domain}/",
        }


def stable_int(*parts: object) -> int:
    # hashlib, never hash(): str hashes change per interpreter (PYTHONHASHSEED).
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _slug(name: str) -> str:
    return "-".join(name.lower().replace("&", " ").split())


def generate_suppliers(options: WorldOptions, seed: int) -> tuple[Supplier, ...]:
    rng = random.Random(stable_int("suppliers", seed))
    names = [f"{a} {b}" for a in _NAME_FIRST for b in _NAME_SECOND]
    rng.shuffle(names)
    mid_price = (options.price_min + options.price_max) / 2
    suppliers = []
    for i in range(options.suppliers):
        name = names[i % len(names)] + (f" {i // len(names) + 1}" if i >= len(names) else "")
        price = max(round(rng.uniform(options.price_min, options.price_max), 4), 0.0001)
        delivery = rng.uniform(options.delivery_hours_min, options.delivery_hours_max)
        delivery = min(
            max(round(delivery * 2) / 2, options.delivery_hours_min), options.delivery_hours_max
        )
        # Round minimum orders to hundreds when the range allows, as real price lists do.
        step = 100 if options.min_order_max >= 1000 else 1
        min_order = round(rng.randint(options.min_order_min, options.min_order_max) / step) * step
        min_order = min(max(min_order, options.min_order_min), options.min_order_max)
        reliable = not (price < mid_price and rng.random() < options.unreliable_share)
        rating = rng.uniform(3.8, 4.9) if reliable else rng.uniform(1.9, 4.0)
        suppliers.append(
            Supplier(
                name=name,
                domain=_slug(name) + ".example",
                price_per_unit=price,
                delivery_hours=delivery,
                min_order=min_order,
                reliable=reliable,
                rating=round(rating, 1),
            )
        )
    return tuple(suppliers)


def find_supplier(suppliers: tuple[Supplier, ...], ref: object) -> Supplier | None:
    """A supplier by name, e-mail address, domain or URL (case-insensitive), or None."""
    if isinstance(ref, dict):  # a search result passed back as it is
        ref = ref.get("name")
    if not isinstance(ref, str):
        return None
    key = ref.strip().lower()
    if "://" in key:
        try:
            key = urlsplit(key).hostname or ""
        except ValueError:
            return None
    key = key.rsplit("@", 1)[-1].removeprefix("www.")
    for s in suppliers:
        if key in (s.name.lower(), s.domain):
            return s
    return None


def matching(suppliers: tuple[Supplier, ...], query: str) -> list[Supplier]:
    if not query.strip() or any(w in query for w in _SEARCH_WORDS):
        return list(suppliers)
    return [s for s in suppliers if s.name.lower() in query or query in s.name.lower()]


def market_page(suppliers: tuple[Supplier, ...], query: str) -> str:
    hits = matching(suppliers, query.lower())
    lines = [f"PaperMarket: results for {query!r} ({len(hits)})", ""]
    for s in hits:
        lines.append(
            f"- {s.name}: {s.price_per_unit:g}/clip, min {s.min_order}, "
            f"ships in {s.delivery_hours:g}h, rated {s.rating}/5, https://{s.domain}/"
        )
    return "\n".join(lines)


def supplier_page(s: Supplier, rng: random.Random) -> str:
    good = ("Arrived exactly when promised.", "Solid clips, fair price.", "Fast and tidy.")
    bad = ("Took two extra days to arrive.", "Half my order came a day late.", "Slow.")
    reviews = rng.sample(good if s.reliable else good[:1] + bad, 2)
    return "\n".join(
        [
            f"{s.name}: paperclips in bulk",
            f"Price: {s.price_per_unit:g} per clip. Minimum order: {s.min_order} clips.",
            f"Delivery: about {s.delivery_hours:g} hours after ordering.",
            f"Contact: {s.email}",
            f"Customer rating: {s.rating}/5",
            *(f'Review: "{r}"' for r in reviews),
        ]
    )


def news_page(suppliers: tuple[Supplier, ...], rng: random.Random) -> str:
    cheapest = min(suppliers, key=lambda s: s.price_per_unit)
    headlines = [
        f"Steel wire prices {rng.choice(('edge up', 'ease', 'hold steady'))} this week",
        f"{cheapest.name} advertises the lowest clip prices in town",
        "Courier delays expected overnight, logistics firms warn",
        "Office supply demand surges ahead of quarter end",
        "Local workshop doubles output with second wire-bending machine",
    ]
    rng.shuffle(headlines)
    return "Daily Business News\n\n" + "\n".join(f"* {h}" for h in headlines[:3])


def not_found(url: str) -> str:
    return f"404 Not Found: {url[:200]}\n(This is a simulated web: nothing leaves the lab.)"
