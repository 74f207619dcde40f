#!/usr/bin/env python3
"""Writes the tokenizer fixture: a byte-level BPE trained by Hugging Face `tokenizers` on an
English text every Debian system has (the GPL-3 text in /usr/share/common-licenses), saved as
tokenizer.json, with the ids `tokenizers` gives for a set of test strings. The Swift tests load
the same tokenizer.json and must produce exactly these ids (CI needs no Python).

    pip install tokenizers && python3 tools/tokenizer_reference.py
"""
import json
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

OUT = Path(__file__).resolve().parent.parent / "Tests/TrainingTests/Fixtures"
CORPUS = Path("/usr/share/common-licenses/GPL-3")
SAMPLES = [
    "Hello, world!",
    "The GNU General Public License is a free, copyleft license for software.",
    "  leading spaces, trailing spaces   ",
    "tabs\tand\nnewlines\n\n  mixed \t\n end",
    "don't, can't, we'll, they've, I'm, she'd, it's, y'all, O'Neil's",
    "DON'T SHOUT'S",
    "numbers 1234567 and 3.14159, 2026-11-25",
    "ünïcödé naïve café — “quotes” ‘single’ … ellipsis",
    "日本語のテキスト、中文文本。한국어",
    "emoji 🙂🚀 and ZWJ 👩‍💻 sequences",
    "symbols @#$%^&*()_+-=[]{}|;':\",./<>?`~",
    "",
    " ",
    "a",
    "    ",
    "x  \n",
]


def main():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, min_frequency=2, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train([str(CORPUS)], trainer)
    OUT.mkdir(parents=True, exist_ok=True)
    tok.save(str(OUT / "bpe600.tokenizer.json"))
    corpus_lines = CORPUS.read_text(encoding="utf-8").splitlines()[:200]
    cases = [{"text": s, "ids": tok.encode(s).ids} for s in SAMPLES + corpus_lines]
    for c in cases:
        assert tok.decode(c["ids"]) == c["text"], c["text"]
    (OUT / "bpe600.cases.json").write_text(json.dumps(cases, ensure_ascii=False, indent=0))
    print(f"wrote {len(cases)} cases, vocab {tok.get_vocab_size()}")


if __name__ == "__main__":
    main()
