"""doclinks.py FILE...: every relative link of these Markdown pages (and its
#anchor, as GitHub makes them from headings) and every repository path they
name (spec/..., src/..., lua/..., examples/..., bench/..., fuzz/..., doc/...,
docs/..., a page.md) exists. Prints one line per problem; exit status 1 if any."""
import glob
import os
import re
import sys

PATH = re.compile(r"(?<![\w/.$-])((?:spec|src|lua|examples|bench|fuzz|docs?)/[\w.*/-]*|[\w-]+\.md)(?![\w/])")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def slugs(path):
    """The anchors GitHub makes from a page's headings."""
    out, fenced = set(), False
    for line in open(path, encoding="utf-8"):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            slug = re.sub(r"[^\w\- ]", "", title).replace(" ", "-")
            n, base = 1, slug
            while slug in out:
                slug, n = f"{base}-{n}", n + 1
            out.add(slug)
    return out


def exists(target):
    return glob.glob(target) if "*" in target else os.path.exists(target)


def main(files):
    problems = []
    for page in files:
        here = os.path.dirname(page)
        text = open(page, encoding="utf-8").read()
        for n, line in enumerate(text.splitlines(), 1):
            for target in LINK.findall(line):
                if re.match(r"^[a-z]+:", target):
                    continue
                path, _, anchor = target.partition("#")
                full = os.path.normpath(os.path.join(here, path)) if path else page
                if not os.path.exists(full):
                    problems.append(f"{page}:{n}: link to a missing file: {target}")
                elif anchor and full.endswith(".md") and anchor not in slugs(full):
                    problems.append(f"{page}:{n}: link to a missing section: {target}")
            for cited in PATH.findall(line):
                cited = cited.rstrip(".")
                if cited.endswith(".md") and "/" not in cited:
                    if not (exists(os.path.join(here, cited)) or exists(cited)):
                        problems.append(f"{page}:{n}: names a page not in the repository: {cited}")
                elif not exists(cited):
                    problems.append(f"{page}:{n}: names a path not in the repository: {cited}")
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
