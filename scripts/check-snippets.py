#!/usr/bin/env python3
"""Compile every ```swift block of MmapKit's documentation against the library.

Where the blocks come from
  - README.md
  - Sources/MmapKit/MmapKit.docc/*.md (the DocC articles)
  - the `///` doc comments of Sources/MmapKit/**/*.swift (the `///` and one following space are
    stripped; a comment is a run of consecutive `///` lines)

A fence whose info string is `swift` (any case) is a Swift block and is compiled. Anything else
must say what it is (```text, ```console, ```sh, ...): an opening fence with no info string is
reported as a failure, so no block is ever skipped silently.

How a block is wrapped (one generated file, in a SwiftPM target of its own, per block)
  - `import MmapKit` is implicit. A block's own `import` lines go to the top of the file.
  - The block is cut into top-level items at lines that start in column 0 (comments there stay
    with the item after them; lines starting with `}`, `)`, `]` or `.` continue the item).
    Items that are declarations that Swift allows only at file scope or that a reader expects
    there -- `func`, `struct`, `class`, `enum`, `protocol`, `extension`, `actor`, `typealias`,
    `precedencegroup`, `operator`, `macro`, after any attributes (`@...`) and modifiers
    (`public`, `private`, `final`, ...) -- go to file scope, in their order.
  - Every other item (statements, `let`/`var` bindings, `do`/`for`/...) goes, in its order, into
    the body of `func snippet_<block>() async throws { ... }`, after the block's context (the
    function is left out when the block is declarations only).
  - So a declaration in column 0 never sees the block's local variables or context; indent it
    (or write it after a statement inside a `do { }`) to make it local.
  - Each block is its own module: blocks never see each other's declarations.

Conventions for authors (HTML comments, which neither GitHub nor DocC renders), written on the
lines right before the opening fence (blank lines may separate them from the fence):
  <!-- snippet-context: let path = "/tmp/data"; let fd: CInt = 0 -->
      Swift statements run before the block, inside its function: the variables the block
      uses without declaring them. It may span several lines; several such comments add up.
  <!-- snippet-expect-error: overlapping accesses to 'map' -->
      The block must NOT compile: it passes only when the compiler reports at least one error
      and every error it reports contains this text. For examples of what the compiler
      rejects.
  <!-- snippet-traits: FoundationInterop, SystemInterop -->
      The block uses API of package traits: it is compiled in a second scratch package
      (.build-snippets-traits/) whose MmapKit dependency enables every trait that any block
      names, and which also offers swift-system's `SystemPackage` to `import`.
In a doc comment the same comments are written on `///` lines.

Settings of the snippet package: Swift 6 language mode and strict memory safety, as in MmapKit's
own targets, so a block that calls an unsafe API marks it `unsafe` and a block that calls none
needs no `unsafe`. Not the `Lifetimes` experimental feature: it is compiled as a user's package,
which the README and GettingStarted promise needs no experimental feature to use spans.

Diagnostics: a block fails on any error, and on any warning except the unused-value warnings
([#no-usage]) that fragments naturally produce; so a block that calls an unsafe API without
`unsafe` fails. Compiler output is mapped back to the documentation's file and line.

The scratch package lives in .build-snippets/ (ignored by git); blocks marked snippet-traits
build in a second one, .build-snippets-traits/, against MmapKit with those traits on. One `swift build` compiles all
blocks; only when a failure cancels the build before some blocks were compiled is it run again
without the failed blocks, so each block gets a verdict.
"""

import argparse
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRATCH = os.path.join(ROOT, ".build-snippets")
# Blocks that use the API of package traits (snippet-traits) build here, against MmapKit with them.
SCRATCH_TRAITS = os.path.join(ROOT, ".build-snippets-traits")
DOCC = os.path.join("Sources", "MmapKit", "MmapKit.docc")
SOURCES = os.path.join("Sources", "MmapKit")

CONTRIBUTING = """\
Writing documentation code (CONTRIBUTING):
  Every ```swift block in README.md, in the DocC articles and in `///` doc comments is compiled
  by this script (`make snippets`, a step of `make test`) against MmapKit, each block on its own,
  with `import MmapKit` implied. Statements are placed in a function; column-0 declarations
  (func, struct, extension, ...) go to file scope. When a block uses a variable it does not
  declare (a path, a descriptor `fd`, a `map` from an earlier block), declare it in a comment
  right before the fence -- GitHub and DocC do not render it:

      <!-- snippet-context: let path = "/tmp/data"; let map = try Mmap(path: path) -->
      ```swift
      print(map.count)
      ```

  A block that shows code the compiler rejects says so, with the text of the error:

      <!-- snippet-expect-error: overlapping accesses to 'map' -->

  A block that uses the API of a package trait names it (it is then compiled against MmapKit
  with the traits on, where `import Foundation` or `import SystemPackage` work):

      <!-- snippet-traits: FoundationInterop -->

  A block that is not Swift is fenced as what it is (```text, ```console, ```sh); a fence
  without a language fails the check. A block fails on any error and on any warning other than
  an unused value; call unsafe APIs with `unsafe`, as strict memory safety asks.
"""

FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([^\s`]*)[^`]*$")
DOC_LINE = re.compile(r"^\s*///(.*)$")
DECL_KEYWORDS = {
    "func", "struct", "class", "enum", "protocol", "extension", "actor", "typealias",
    "precedencegroup", "operator", "macro", "import",
}
MODIFIERS = {
    "public", "private", "fileprivate", "internal", "package", "open", "final", "nonisolated",
    "indirect", "prefix", "postfix", "infix", "static",
}
DIAGNOSTIC = re.compile(r"^(/[^:]+\.swift):(\d+):(\d+): (error|warning|note): (.*)$")
TOLERATED_WARNINGS = ("[#no-usage]",)


class Block:
    def __init__(self, kind, path, fence_line, code, context, expect_error, traits=()):
        self.kind = kind  # "README", "DocC", "doc comment"
        self.path = path  # relative to ROOT
        self.fence_line = fence_line  # 1-based line of the opening fence
        self.code = code  # [(source line number, text)]
        self.context = context  # [(source line number, text)]
        self.expect_error = expect_error  # None or the expected text
        self.traits = sorted(traits)  # package traits the block needs (snippet-traits)
        self.scratch = SCRATCH_TRAITS if self.traits else SCRATCH
        self.problem = None  # a reason it cannot be compiled at all
        stem = re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_")
        self.name = f"Snippet_{stem}_L{fence_line}"

    @property
    def location(self):
        return f"{self.path}:{self.fence_line}"


def parse_markdown(lines, path, kind):
    """lines: [(source line number, text)]. Returns the ```swift blocks and the fences without a
    language (which fail)."""
    blocks = []
    i = 0
    pending = []  # (source line number, text) of the lines before a fence, for directives
    while i < len(lines):
        number, text = lines[i]
        m = FENCE.match(text)
        if not m:
            pending.append((number, text))
            i += 1
            continue
        indent, marker, info = len(m.group(1)), m.group(2), m.group(3)
        body = []
        j = i + 1
        while j < len(lines):
            t = lines[j][1]
            close = re.match(r"^\s*(`{3,}|~{3,})\s*$", t)
            if close and close.group(1)[0] == marker[0] and len(close.group(1)) >= len(marker):
                break
            body.append((lines[j][0], t[indent:] if t[:indent].strip() == "" else t.lstrip()))
            j += 1
        lang = info.lower()
        if lang == "swift" or lang == "":
            context, expect, traits, problems = directives_before(pending)
            block = Block(kind, path, number, body, context, expect, traits)
            if lang == "":
                problems.append("fence without a language: fence Swift as ```swift, anything else as ```text")
            block.problem = "; ".join(problems) or None
            blocks.append(block)
        pending = []
        i = j + 1
    return blocks


def directives_before(pending):
    """The snippet-* comments right before a fence (blank lines may separate them)."""
    k = len(pending)
    comments = []  # [(first line number, text)], nearest first
    while True:
        while k > 0 and pending[k - 1][1].strip() == "":
            k -= 1
        if k == 0 or not pending[k - 1][1].rstrip().endswith("-->"):
            break
        s = k - 1
        while s > 0 and "<!--" not in pending[s][1]:
            s -= 1
        if "<!--" not in pending[s][1]:
            break
        comments.append((pending[s][0], "\n".join(t for _, t in pending[s:k])))
        k = s
    context, expect, traits, problems = [], None, set(), []
    for first_line, text in reversed(comments):
        for m in re.finditer(r"<!--\s*snippet-([\w-]*)\s*:?(.*?)-->", text, re.S):
            kind, content = m.group(1), m.group(2)
            line_number = first_line + text[: m.start(2)].count("\n")
            if kind == "context":
                for index, piece in enumerate(content.split("\n")):
                    if piece.strip():
                        context.append((line_number + index, piece.strip()))
            elif kind == "expect-error":
                expect = content.strip()
            elif kind == "traits":
                traits.update(t.strip() for t in content.split(",") if t.strip())
            else:
                problems.append(
                    f"unknown directive snippet-{kind} (snippet-context, snippet-expect-error or snippet-traits)"
                )
    return context, expect, traits, problems


def collect():
    blocks = []
    readme = os.path.join(ROOT, "README.md")
    with open(readme, encoding="utf-8") as f:
        lines = list(enumerate(f.read().split("\n"), start=1))
    blocks += parse_markdown(lines, "README.md", "README")

    for name in sorted(os.listdir(os.path.join(ROOT, DOCC))):
        if name.endswith(".md"):
            path = os.path.join(DOCC, name)
            with open(os.path.join(ROOT, path), encoding="utf-8") as f:
                lines = list(enumerate(f.read().split("\n"), start=1))
            blocks += parse_markdown(lines, path, "DocC")

    sources = []
    for directory, _, files in os.walk(os.path.join(ROOT, SOURCES)):
        sources += [os.path.join(directory, f) for f in files if f.endswith(".swift")]
    for full in sorted(sources):
        path = os.path.relpath(full, ROOT)
        with open(full, encoding="utf-8") as f:
            lines = f.read().split("\n")
        comment = []
        for number, text in enumerate(lines + [""], start=1):
            m = DOC_LINE.match(text)
            if m:
                content = m.group(1)
                comment.append((number, content[1:] if content.startswith(" ") else content))
            elif comment:
                blocks += parse_markdown(comment, path, "doc comment")
                comment = []
    return blocks


def top_level_items(code):
    """Cuts a block into items that start at column-0 lines; comments join the next item."""
    items = []
    current = []
    leading_comments = []
    for number, text in code:
        starts = text[:1] not in ("", " ", "\t", "}", ")", "]", ".")
        is_comment = text.startswith("//") or text.startswith("/*")
        if starts and is_comment:
            leading_comments.append((number, text))
            continue
        if starts:
            if current:
                items.append(current)
            current = leading_comments + [(number, text)]
            leading_comments = []
        else:
            if leading_comments:
                current += leading_comments
                leading_comments = []
            current.append((number, text))
    if current or leading_comments:
        items.append(current + leading_comments)
    return items


def declaration_keyword(item):
    for _, text in item:
        if text.startswith("//") or text.startswith("/*"):
            continue
        words = re.findall(r"@\w+(?:\([^)]*\))?|[A-Za-z_]\w*|\S", text)
        for word in words:
            if word.startswith("@"):
                continue
            if word in MODIFIERS:
                continue
            return word if word in DECL_KEYWORDS else None
        return None
    return None


def generate(block):
    """The generated source: [(text, (path, source line) or None)]."""
    out = [("import MmapKit", None)]
    file_scope = []
    body = []
    for item in top_level_items(block.code):
        keyword = declaration_keyword(item)
        if keyword == "import":
            out += [(t, (block.path, n)) for n, t in item]
        elif keyword:
            file_scope += [(t, (block.path, n)) for n, t in item]
        else:
            body += [("    " + t if t else t, (block.path, n)) for n, t in item]
    out.append(("", None))
    out += file_scope
    if body or block.context:
        out.append((f"func {block.name.lower()}() async throws {{", (block.path, block.fence_line)))
        out += [("    " + t, (block.path, n)) for n, t in block.context]
        out += body
        out.append(("}", (block.path, block.fence_line)))
    return out


def write_if_changed(path, text):
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def manifest(blocks):
    dependency = os.path.basename(ROOT)
    targets = ",\n".join(
        f'        .target(name: "{b.name}", dependencies: mmapkit, path: "Sources/{b.name}", '
        "swiftSettings: settings)"
        for b in blocks
    )
    traits = sorted({t for b in blocks for t in b.traits})
    products = [f'.product(name: "MmapKit", package: "{dependency}")']
    packages = [f".package(path: {json_string(ROOT)})"]
    if traits:
        names = ", ".join(json_string(t) for t in traits)
        packages = [f".package(path: {json_string(ROOT)}, traits: [{names}])"]
        if "SystemInterop" in traits:
            products.append('.product(name: "SystemPackage", package: "swift-system")')
            packages.append('.package(url: "https://github.com/apple/swift-system.git", from: "1.8.1")')
    return f"""// swift-tools-version: 6.2
// Generated by scripts/check-snippets.py: one target per documentation code block.
import PackageDescription

let mmapkit: [Target.Dependency] = [{", ".join(products)}]
// A user's package: strict memory safety, as in MmapKit's own targets, so unsafe calls must be
// marked `unsafe`; no `Lifetimes` feature, since the docs promise that using spans needs none.
let settings: [SwiftSetting] = [.strictMemorySafety()]

let package = Package(
    name: "MmapKitSnippets",
    dependencies: [{", ".join(packages)}],
    targets: [
{targets}
    ],
    swiftLanguageModes: [.v6]
)
"""


def json_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def prepare(blocks, line_maps):
    for scratch in (SCRATCH, SCRATCH_TRAITS):
        wanted = {b.name for b in blocks if b.scratch == scratch}
        if not wanted and not os.path.isdir(scratch):
            continue
        os.makedirs(os.path.join(scratch, "Sources"), exist_ok=True)
        for name in os.listdir(os.path.join(scratch, "Sources")):
            if name not in wanted:
                subprocess.run(["rm", "-rf", os.path.join(scratch, "Sources", name)], check=True)
    for b in blocks:
        lines = generate(b)
        file = os.path.join(b.scratch, "Sources", b.name, "snippet.swift")
        write_if_changed(file, "\n".join(t for t, _ in lines) + "\n")
        line_maps[os.path.realpath(file)] = (b, [m for _, m in lines])


def build(blocks, line_maps, verbose):
    """Builds the scratch package of each group of blocks (without and with traits)."""
    status, outputs = 0, []
    for scratch in (SCRATCH, SCRATCH_TRAITS):
        group = [b for b in blocks if b.scratch == scratch]
        if not group:
            continue
        write_if_changed(os.path.join(scratch, "Package.swift"), manifest(group))
        result = subprocess.run(
            ["swift", "build", "--package-path", scratch],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        if verbose:
            sys.stdout.write(result.stdout)
        status = status or result.returncode
        outputs.append(result.stdout)
    output = "\n".join(outputs)
    diagnostics = {b.name: [] for b in blocks}
    seen = set()
    for line in output.split("\n"):
        m = DIAGNOSTIC.match(line)
        if not m:
            continue
        file, row, column, severity, message = m.groups()
        entry = line_maps.get(os.path.realpath(file))
        if entry is None or (file, row, column, message) in seen:
            continue
        seen.add((file, row, column, message))
        block, mapping = entry
        where = mapping[int(row) - 1] if 0 < int(row) <= len(mapping) else None
        path, source_line = where if where else (block.path, block.fence_line)
        diagnostics[block.name].append((severity, f"{path}:{source_line}: {severity}: {message}"))
    return status, output, diagnostics


def object_stamp(block):
    """The mtime of the block's object file if it is at least as new as its source, else None."""
    source = os.path.join(block.scratch, "Sources", block.name, "snippet.swift")
    obj = os.path.join(block.scratch, ".build", "debug", f"{block.name}.build", "snippet.swift.o")
    if os.path.exists(obj) and os.path.getmtime(obj) >= os.path.getmtime(source):
        return os.path.getmtime(obj)
    return None


def with_cached_warnings(block, found):
    """An incremental build does not recompile an unchanged block, so it prints none of the
    block's warnings again: keep the diagnostics of the compile that made the object file."""
    cache = os.path.join(block.scratch, "Sources", block.name, "diagnostics.json")
    stamp = object_stamp(block)
    if stamp is None or found:
        if stamp is not None:
            with open(cache, "w", encoding="utf-8") as f:
                json.dump({"object": stamp, "diagnostics": found}, f)
        return found
    try:
        with open(cache, encoding="utf-8") as f:
            saved = json.load(f)
        if saved["object"] == stamp:
            return [tuple(d) for d in saved["diagnostics"]]
    except (FileNotFoundError, ValueError, KeyError):
        pass
    # Compiled now without a word, or compiled before this cache existed: record it as clean
    # (the first run after `rm -rf .build-snippets` compiles everything, so this is exact).
    with open(cache, "w", encoding="utf-8") as f:
        json.dump({"object": stamp, "diagnostics": []}, f)
    return []


def verdict(block, found):
    """(passed, lines to print) from the block's diagnostics; None if it was never compiled."""
    found = with_cached_warnings(block, found)
    errors = [text for severity, text in found if severity == "error"]
    bad_warnings = [
        text for severity, text in found
        if severity == "warning" and not any(tag in text for tag in TOLERATED_WARNINGS)
    ]
    if block.expect_error is not None:
        if not errors:
            if object_stamp(block) is None:
                return None
            return False, [f"{block.location}: error: compiles, but the block says it fails with: "
                           f"{block.expect_error}"]
        ok = all(block.expect_error in e for e in errors)
        if ok:
            return True, []
        return False, [f"expected every error to contain: {block.expect_error}"] + errors
    if errors or bad_warnings:
        return False, errors + bad_warnings + [t for s, t in found if s == "note"]
    return (True, []) if object_stamp(block) is not None else None


def main():
    parser = argparse.ArgumentParser(
        description="Compile every ```swift block of README.md, the DocC articles and the doc "
        "comments of Sources/MmapKit against MmapKit (scratch packages: .build-snippets/, and "
        ".build-snippets-traits/ for blocks that use the API of package traits).",
        epilog=CONTRIBUTING,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print the compiler's output")
    args = parser.parse_args()

    blocks = collect()
    line_maps = {}
    compilable = [b for b in blocks if b.problem is None]
    prepare(compilable, line_maps)

    results = {}
    for b in blocks:
        if b.problem:
            results[b.name] = (False, [f"{b.location}: error: {b.problem}"])
    pending = list(compilable)
    rounds = 0
    while pending:
        rounds += 1
        if rounds > 1:
            print(f"(swift build again for the {len(pending)} blocks a failure cancelled)", flush=True)
        status, output, diagnostics = build(pending, line_maps, args.verbose)
        progress = False
        for b in pending:
            v = verdict(b, diagnostics[b.name])
            if v is not None:
                results[b.name] = v
                progress = True
        pending = [b for b in pending if b.name not in results]
        if pending and (status == 0 or not progress):
            # The build ended without compiling these blocks and without any error of a block.
            sys.stdout.write(output)
            for b in pending:
                results[b.name] = (False, [f"{b.location}: error: not compiled (see the output above)"])
            pending = []
        # Blocks that failed are left out of the next round, so the rest can compile.

    failures = 0
    for b in blocks:
        passed, lines = results[b.name]
        print(f"{'ok' if passed else 'FAIL'} {b.location}")
        for line in lines:
            print(f"    {line}")
        failures += 0 if passed else 1
    counts = {kind: sum(1 for b in blocks if b.kind == kind) for kind in ("README", "DocC", "doc comment")}
    if failures:
        print(f"{failures} of {len(blocks)} code blocks failed")
    print(
        f"{len(blocks)} code blocks compiled: {counts['README']} from README, "
        f"{counts['DocC']} from DocC articles, {counts['doc comment']} from doc comments"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
