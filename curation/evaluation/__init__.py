"""Evaluation of a trained model on the published test split: answer metrics (ROUGE-L, exact match), loss and
perplexity on the reference outputs, and an AlpacaEval-style pairwise judge with raw and length-controlled win
rates. Plain values in and out; curation.services stores what they give back."""
