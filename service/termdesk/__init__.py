"""termdesk: a deal-term rules engine. Term packages in, decisions, violations and trades out."""

__version__ = "0.1.0"
