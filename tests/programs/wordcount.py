"""wordcount.py: count the words of a generated text two ways, with processes sharing
objects through a manager.

    python3 wordcount.py [--start-method fork|spawn|forkserver] [--words N] [--seed S]

1. a Pool of workers: each counts a chunk of the text, then adds its counts into one shared
   dict under one shared Lock, and adds its number of words to a shared Value;
2. a pipeline: a producer puts the text's lines on a JoinableQueue, consumer processes take
   them, count their words and put the counts on a result Queue, marking each line done;
   the main process joins the queue, stops the consumers and adds up their results.

It prints one JSON object: {"pool": {word: count}, "pipeline": {word: count}, "total": N,
"lines": N}. A program written for multiprocessing.Manager(); only its import says which
manager serves the shared objects.
"""

import argparse
import json
import multiprocessing
import random
from collections import Counter

from shmgr import Manager

WORDS = ('alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike november '
         'oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu').split()


def generate(nwords, seed):
    """The text: nwords words drawn with a Zipf-like skew, 12 to a line."""
    rng = random.Random(seed)
    weights = [1.0 / (i + 1) for i in range(len(WORDS))]
    words = rng.choices(WORDS, weights, k=nwords)
    return [' '.join(words[i:i + 12]) for i in range(0, nwords, 12)]


def count_chunk(lines, counts, lock, total):
    """A Pool task: count a chunk of lines, then merge into the shared dict."""
    local = Counter()
    for line in lines:
        local.update(line.split())
    with lock:
        for word, n in local.items():
            counts[word] = counts.get(word, 0) + n
        total.value += sum(local.values())
    return len(lines)


def consumer(tasks, results):
    """A pipeline stage: take lines until a None, put each one's counts on results."""
    while True:
        line = tasks.get()
        try:
            if line is None:
                return
            results.put(dict(Counter(line.split())))
        finally:
            tasks.task_done()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--start-method', default=None)
    ap.add_argument('--words', type=int, default=20000)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--workers', type=int, default=4)
    args = ap.parse_args()
    if args.start_method:
        multiprocessing.set_start_method(args.start_method)
    lines = generate(args.words, args.seed)

    with Manager() as manager:
        # 1. a Pool, a shared dict under a shared Lock
        counts = manager.dict()
        lock = manager.Lock()
        total = manager.Value('i', 0)
        chunks = [lines[i:i + 50] for i in range(0, len(lines), 50)]
        with multiprocessing.Pool(args.workers) as pool:
            done = pool.starmap(count_chunk, [(chunk, counts, lock, total) for chunk in chunks])
        assert sum(done) == len(lines), (sum(done), len(lines))
        pool_counts = dict(counts)
        pool_total = total.value

        # 2. a producer/consumer pipeline on a JoinableQueue
        tasks = manager.JoinableQueue()
        results = manager.Queue()
        consumers = [multiprocessing.Process(target=consumer, args=(tasks, results))
                     for _ in range(args.workers)]
        for p in consumers:
            p.start()
        for line in lines:
            tasks.put(line)
        tasks.join()  # every line counted
        pipeline = Counter()
        for _ in lines:
            pipeline.update(results.get())
        for _ in consumers:
            tasks.put(None)
        tasks.join()
        for p in consumers:
            p.join()
            assert p.exitcode == 0, p.exitcode

    print(json.dumps({'pool': pool_counts, 'pipeline': dict(pipeline), 'total': pool_total,
                      'lines': len(lines)}, sort_keys=True))


if __name__ == '__main__':
    main()
