"""LeadShop Assessor: the shared kernel (no Prefect imports here, see DESIGN.md)."""

__version__ = "0.1.0"
