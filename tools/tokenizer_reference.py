#!/usr/bin/env python3
"""Writes the tokenizer fixtures (CI needs no Python):

1. a byte-level BPE trained by Hugging Face `tokenizers` on the GPL-3 text (a copy is committed
   as Tests/TrainingTests/Fixtures/gpl-3.txt), saved as tokenizer.json, with the ids `tokenizers`
   gives for a set of test strings: the Swift encoder must give exactly these ids;
2. the ids `tokenizers` gives with the tokenizer.json that Tributary itself trained
   (`tributary tokenizer train --input Tests/TrainingTests/Fixtures/gpl-3.txt --vocab-size 800
   --out Tests/TrainingTests/Fixtures/swift-bpe800.tokenizer.json`): proof that the files Tributary
   writes load in `tokenizers` and encode the same way there.

    pip install tokenizers && python3 tools/tokenizer_reference.py
"""
import json
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

OUT = Path(__file__).resolve().parent.parent / "Tests/TrainingTests/Fixtures"
CORPUS = OUT / "gpl-3.txt"
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

    ours = Tokenizer.from_file(str(OUT / "swift-bpe800.tokenizer.json"))
    cases = [{"text": s, "ids": ours.encode(s).ids} for s in SAMPLES + corpus_lines]
    for c in cases:
        assert ours.decode(c["ids"]) == c["text"], c["text"]
    (OUT / "swift-bpe800.cases.json").write_text(json.dumps(cases, ensure_ascii=False, indent=0))
    print(f"wrote {len(cases)} cases for Tributary's own tokenizer, vocab {ours.get_vocab_size()}")


if __name__ == "__main__":
    main()
