"""The documents' links: every relative link in README.md and docs/*.md names a file of the repo,
and every #anchor a heading of the page it points to (GitHub's rule for heading ids); README.md
links every page under docs/. Links in code blocks and code spans are not links; http(s) and
mailto links are not followed. Needs no server: it reads the files."""

import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import glob  # noqa: E402
import re  # noqa: E402

REPO = harness.REPO
LINK = re.compile(r'!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)')
HEADING = re.compile(r'^(#{1,6})\s+(.*?)\s*#*\s*$')
FENCE = re.compile(r'^\s*(```|~~~)')
CODE_SPAN = re.compile(r'(`+).*?\1')


def prose_lines(path):
    """(line number, text) of the lines outside fenced code blocks."""
    with open(path, encoding='utf-8') as f:
        lines = f.read().split('\n')
    fenced = False
    for n, line in enumerate(lines, 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield n, line


def slug(text):
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = CODE_SPAN.sub(lambda m: m.group(0).strip('`'), text)
    text = re.sub(r'!?\[([^\]]*)\]\([^)]*\)', r'\1', text)  # a link in a heading: its text
    text = re.sub(r'[^\w\- ]', '', text.lower(), flags=re.UNICODE)
    return text.replace(' ', '-')


_anchors = {}


def anchors(path):
    """The ids of a Markdown file's headings (a repeated one gets -1, -2, ... as on GitHub)."""
    if path not in _anchors:
        seen, ids = {}, set()
        for _, line in prose_lines(path):
            m = HEADING.match(line)
            if m:
                base = slug(m.group(2))
                k = seen.get(base, 0)
                seen[base] = k + 1
                ids.add(base if k == 0 else '%s-%d' % (base, k))
        _anchors[path] = ids
    return _anchors[path]


def links(path):
    """(line number, target) of every link outside code."""
    for n, line in prose_lines(path):
        for m in LINK.finditer(CODE_SPAN.sub('', line)):
            yield n, m.group(1)


def main():
    pages = [os.path.join(REPO, 'README.md')] + sorted(glob.glob(os.path.join(REPO, 'docs', '*.md')))
    harness.check(len(pages) > 1, 'docs/*.md found beside README.md')
    total = 0
    for page in pages:
        name = os.path.relpath(page, REPO)
        other = here = headed = outside = 0
        for n, target in links(page):
            if re.match(r'^[a-z][a-z0-9+.-]*:', target, re.I):  # http:, https:, mailto:
                outside += 1
                continue
            total += 1
            file_part, _, anchor = target.partition('#')
            dest = os.path.normpath(os.path.join(os.path.dirname(page), file_part)) if file_part else page
            where = '%s:%d: %s' % (name, n, target)
            if file_part:
                other += 1
                if not harness.check(os.path.exists(dest), '%s: no such file %s' % (where, os.path.relpath(dest, REPO))):
                    continue
                harness.check(os.path.realpath(dest).startswith(os.path.realpath(REPO) + os.sep),
                              '%s: points outside the repository' % where)
            else:
                here += 1
            if anchor and dest.endswith('.md'):
                headed += 1
                harness.check(anchor in anchors(dest), '%s: %s has no heading with the id #%s'
                              % (where, os.path.relpath(dest, REPO), anchor))
        harness.note('%s: %d links to other files, %d within the page, %d of them to a #heading; '
                     '%d to other sites (not followed)' % (name, other, here, headed, outside))
    readme = set(os.path.normpath(os.path.join(REPO, t.partition('#')[0]))
                 for _, t in links(os.path.join(REPO, 'README.md')))
    for page in pages[1:]:
        harness.check(page in readme, 'README.md links %s' % os.path.relpath(page, REPO))
    harness.note('README.md: checked that it links each of the %d pages under docs/' % (len(pages) - 1))
    harness.check(total > 0, 'some links were checked')
    harness.note('%d pages, %d relative links checked' % (len(pages), total))
    harness.done()


if __name__ == '__main__':
    main()
