#!/usr/bin/python3
"""A MentatLab agent in Python on the original plain contract: no SDK, no stubs.

Reads {"spec": ..., "context": ...} as JSON on stdin, writes one JSON event per stdout line and ends
with {"result": {...}} keyed by output pin. Exit code 3 would mark a transient failure.
"""
import collections
import json
import re
import sys
import time


def emit(event):
    sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def text_stats(text, top):
    words = re.findall(r"[^\W\d_]+(?:'[^\W\d_]+)?", text.lower())
    sentences = [s for s in re.split(r"[.!?]+", text) if s.strip()]
    counts = collections.Counter(words)
    return {
        "characters": len(text),
        "words": len(words),
        "sentences": len(sentences),
        "unique_words": len(counts),
        "top_words": [[word, n] for word, n in counts.most_common(top)],
    }


def main():
    document = json.load(sys.stdin)
    spec, context = document.get("spec", {}), document.get("context", {})
    text = context.get("inputs", {}).get("text")
    if not isinstance(text, str):
        emit({"type": "error", "message": "input pin 'text' must be text"})
        return 1
    top = int(spec.get("params", {}).get("top", 5))
    emit({"type": "log", "level": "info", "message": f"analysing {len(text)} characters", "ts": time.time()})
    emit({"type": "progress", "data": {"percent": 50, "message": "counting words"}, "ts": time.time()})
    stats = text_stats(text, top)
    emit({"type": "metric", "data": {"name": "words", "value": stats["words"]}, "ts": time.time()})
    emit({"result": {"stats": stats, "summary": f"{stats['words']} words in {stats['sentences']} sentences"}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
