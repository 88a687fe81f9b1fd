"""The SNI task taxonomy offered in the task editor (free values are allowed too)."""

# The SNI categories (Super-NaturalInstructions' task taxonomy), offered in the editor; free values allowed.
SNI_CATEGORIES = [
    "Answer Verification", "Answerability Classification", "Cause Effect Classification",
    "Code to Text", "Coherence Classification", "Commonsense Classification", "Coreference Resolution",
    "Data to Text", "Dialogue Act Recognition", "Dialogue Generation", "Dialogue State Tracking",
    "Discourse Connective Identification", "Entity Generation", "Entity Relation Classification",
    "Explanation", "Fact Verification", "Fill in The Blank", "Gender Classification",
    "Grammar Error Correction", "Grammar Error Detection", "Information Extraction",
    "Intent Identification", "Irony Detection", "Keyword Tagging", "Language Identification",
    "Linguistic Probing", "Mathematics", "Misc.", "Named Entity Recognition", "Negotiation Strategy Detection",
    "Number Conversion", "Overlap Extraction", "Paraphrasing", "Poem Generation", "Pos Tagging",
    "Preposition Prediction", "Program Execution", "Punctuation Error Detection", "Question Answering",
    "Question Decomposition", "Question Generation", "Question Rewriting", "Question Understanding",
    "Section Classification", "Sentence Composition", "Sentence Compression", "Sentence Expansion",
    "Sentence Ordering", "Sentence Perturbation", "Sentiment Analysis", "Spam Classification",
    "Speaker Identification", "Speaker Relation Classification", "Spelling Error Detection",
    "Stance Detection", "Stereotype Detection", "Story Composition", "Style Transfer", "Summarization",
    "Text Categorization", "Text Completion", "Text Matching", "Text Quality Evaluation", "Text Simplification",
    "Text to Code", "Textual Entailment", "Title Generation", "Toxic Language Detection", "Translation",
    "Word Analogy", "Word Relation Classification", "Word Semantics", "Wrong Candidate Generation",
]

# Common SNI domains.
SNI_DOMAINS = ["Wikipedia", "News", "Dialogue", "Fiction", "Books", "Reviews", "Social Media", "Web", "Code",
               "Mathematics", "Commonsense", "Science", "Medicine", "Law", "Government and Politics", "Sociology",
               "Geography", "History", "Sports", "Captions", "Personal Narratives", "Public Places"]
