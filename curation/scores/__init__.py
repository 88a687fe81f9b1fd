"""Scores per record: an LLM judge's rating (AlpaGasus), instruction-following difficulty (IFD) with a small causal
LM, and cheap signals that need no model. Each gives plain numbers; curation.services.scores stores them."""
