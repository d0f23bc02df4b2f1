#!/usr/bin/env python3
"""Checks that every binding symbol the iOS code uses exists in the generated
Swift API (build/bindings/Occ.swift from scripts/gen-bindings.sh).

There is no Swift compiler on the Linux machines that run the tests, so the
iOS app, its notification extension, the app logic and the Swift tests are
checked by reading: every identifier used as a type (Capitalised), a member
(`.name`) or a call (`name(`) must be declared either by the iOS sources
themselves, by the generated bindings, or by Apple's SDKs and the Swift
standard library (the names listed in ios/apple-symbols.txt). A name found in
none of them — a misspelt or removed binding API — fails the check.

Usage: scripts/check-swift-api.py [build/bindings/Occ.swift]
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
GENERATED = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build/bindings/Occ.swift"
IOS = ROOT / "ios"
SOURCES = sorted(
    p
    for d in ["App", "NotificationService", "Sources/OccAppLogic", "Sources/Occ", "Tests"]
    for p in (IOS / d).rglob("*.swift")
    if "Generated" not in p.parts
)

DECL = re.compile(
    r"\b(?:class|struct|enum|protocol|typealias|func|var|let|case|actor|extension)\s+`?(\w+)`?"
)
PARAM_LABEL = re.compile(r"[(,]\s*`?(\w+)`?\s+`?(\w+)`?\s*:")  # external + internal name
PARAM = re.compile(r"[(,]\s*`?(\w+)`?\s*:")
CLOSURE_PARAMS = re.compile(r"\{\s*(?:\[[^\]]*\]\s*)?\(?([\w\s,]+?)\)?\s+in\b")
CASE_BIND = re.compile(r"\blet\s+(\w+)|\bvar\s+(\w+)|case\s+let\s+\.?\w+\(([^)]*)\)")
TYPE_USE = re.compile(r"\b([A-Z]\w*)\b")
MEMBER_USE = re.compile(r"\.(\w+)\b")
CALL_USE = re.compile(r"\b([a-z]\w*)\s*\(")


def strip(text: str) -> str:
    """Removes comments and string literals (keeps interpolations' code)."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    text = re.sub(r'"""(.*?)"""', ' "" ', text, flags=re.S)

    def interpolations(m: re.Match) -> str:
        return " ".join(re.findall(r"\\\((.*?)\)", m.group(0))) or '""'

    return re.sub(r'"(?:\\.|[^"\\\n])*"', interpolations, text)


def declared(text: str) -> set[str]:
    names = set(DECL.findall(text))
    for ext, internal in PARAM_LABEL.findall(text):
        names.update([ext, internal])
    names.update(PARAM.findall(text))
    for group in CLOSURE_PARAMS.findall(text):
        names.update(w for w in re.split(r"[\s,]+", group) if w)
    for a, b, c in CASE_BIND.findall(text):
        names.update(w for w in re.split(r"[\s,]+", f"{a} {b} {c}") if re.match(r"^\w+$", w))
    return names


def main() -> int:
    if not GENERATED.exists():
        print(f"{GENERATED} is missing: run scripts/gen-bindings.sh first", file=sys.stderr)
        return 2
    api = declared(strip(GENERATED.read_text()))
    apple = {
        word
        for line in (IOS / "apple-symbols.txt").read_text().splitlines()
        for word in line.split("#")[0].split()
    }
    texts = {p: strip(p.read_text()) for p in SOURCES}
    local = set().union(*(declared(t) for t in texts.values()))
    keywords = {
        "if", "guard", "for", "while", "switch", "return", "catch", "do", "try", "await", "in",
        "self", "Self", "super", "init", "deinit", "some", "any", "where", "throw", "defer",
        "true", "false", "nil", "is", "as", "case", "default", "repeat", "else", "weak",
        "unowned", "inout", "async", "throws", "rethrows", "get", "set", "willSet", "didSet",
        "import", "public", "private", "open", "final", "static", "override", "fileprivate",
        "internal", "mutating", "convenience", "required", "lazy", "optional", "dynamic",
        "indirect", "@testable", "Type", "Protocol",
    }
    known = api | apple | local | keywords

    def unknown(text: str) -> list[tuple[int, str]]:
        found = []
        for n, line in enumerate(text.splitlines(), 1):
            used = set(TYPE_USE.findall(line)) | set(MEMBER_USE.findall(line)) | set(CALL_USE.findall(line))
            found.extend((n, name) for name in sorted(used - known) if not name.isdigit())
        return found

    # The check must catch what it is for: a misspelt method, an unknown type.
    canary = "let c = try Client.open(dir: d, key: k)\nlet n = try await c.sendTxt(to: .user(name: b))\nlet x: OccErrorr? = nil\n"
    if [name for _, name in unknown(canary)] != ["sendTxt", "OccErrorr"]:
        print(f"the checker missed a misspelt binding symbol: {unknown(canary)}", file=sys.stderr)
        return 2

    problems = []
    for path, text in texts.items():
        for n, name in unknown(text):
            problems.append(f"{path.relative_to(ROOT)}:{n}: `{name}` is neither in the generated bindings, the iOS sources nor ios/apple-symbols.txt")
    uses_api = sum(
        1 for t in texts.values() for w in set(re.findall(r"\w+", t)) if w in api and w not in apple and w not in local
    )
    if problems:
        print("\n".join(problems))
        print(f"{len(problems)} unknown symbol(s)")
        return 1
    print(f"Swift API check: {len(SOURCES)} files, every symbol known ({uses_api} distinct uses of the generated API)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
