#!/usr/bin/env python3
"""Checks that every binding symbol the iOS code uses exists in the generated
Swift API (build/bindings/Occ.swift from scripts/gen-bindings.sh).

There is no Swift compiler on the Linux machines that run the tests, so the
iOS app, its notification extension, the app logic, the Swift tests and the
package manifest are checked by reading: every identifier used as a type
(Capitalised), a member (`.name`) or a call (`name(`) must be declared
either by the iOS sources themselves (types, functions, properties, cases,
parameters, closure parameters, generic parameters), by the generated
bindings, or by Apple's SDKs, SwiftPM's PackageDescription and the Swift
standard library (the names listed in ios/apple-symbols.txt). A name found in
none of them — a misspelt or removed binding API — fails the check.

It also checks what the Swift code relies on beyond names: that the
generated file still declares UniFFI's initialisation check the way
scripts/gen-swift.sh expects (ensureNativeLibrary() reads it), and that the
files ios/project.yml and ios/Package.swift name exist, with entitlements
that give the app and its extension the same App Group and a shared
Keychain group, and the app its push environment.

Usage: scripts/check-swift-api.py [build/bindings/Occ.swift]
"""
import pathlib
import plistlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
GENERATED = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build/bindings/Occ.swift"
IOS = ROOT / "ios"
SOURCES = sorted(
    [
        p
        for d in ["App", "NotificationService", "Sources/OccAppLogic", "Sources/Occ", "Tests"]
        for p in (IOS / d).rglob("*.swift")
        if "Generated" not in p.parts
    ]
    + [IOS / "Package.swift"]
)
APP_GROUP = "group.org.occ"

DECL = re.compile(
    r"\b(?:class|struct|enum|protocol|typealias|func|var|let|case|actor|extension)\s+`?(\w+)`?"
)
PARAM_LABEL = re.compile(r"[(,]\s*`?(\w+)`?\s+`?(\w+)`?\s*:")  # external + internal name
PARAM = re.compile(r"[(,]\s*`?(\w+)`?\s*:")
CLOSURE_PARAMS = re.compile(r"\{\s*(?:\[[^\]]*\]\s*)?\(?([\w\s,]+?)\)?\s+in\b")
CASE_BIND = re.compile(r"\blet\s+(\w+)|\bvar\s+(\w+)|case\s+let\s+\.?\w+\(([^)]*)\)")
GENERIC_PARAMS = re.compile(r"\b(?:class|struct|enum|func|init|typealias|actor)\b\s*`?\w*`?\s*<([^<>]*)>")
NUMBER = re.compile(r"^\d[\d_]*$")
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
    for group in GENERIC_PARAMS.findall(text):
        names.update(param.split(":")[0].strip() for param in group.split(","))
    return names


def structure(generated: str) -> list[str]:
    """What the Swift code relies on besides names; the problems found."""
    problems = []
    # scripts/gen-swift.sh makes these two module-internal for ensureNativeLibrary().
    for decl in [
        "private enum InitializationResult {",
        "private let initializationResult: InitializationResult = {",
    ]:
        if sum(1 for line in generated.splitlines() if line == decl) != 1:
            problems.append(f"{GENERATED}: UniFFI's initialisation check is no longer `{decl}` (update scripts/gen-swift.sh and ensureNativeLibrary())")
    if "initializationResult" not in strip((IOS / "Sources/Occ/OccSwift.swift").read_text()):
        problems.append("ios/Sources/Occ/OccSwift.swift: ensureNativeLibrary() does not read initializationResult")

    # The XcodeGen spec: its sources and entitlements exist.
    spec = (IOS / "project.yml").read_text()
    for group in re.findall(r"^\s*sources:\s*\[([^\]]*)\]", spec, flags=re.M):
        for path in (p.strip() for p in group.split(",")):
            if path and not (IOS / path).exists():
                problems.append(f"ios/project.yml: source {path} does not exist")
    entitlements = {}
    for path in re.findall(r"CODE_SIGN_ENTITLEMENTS:\s*(\S+)", spec):
        file = IOS / path
        if not file.exists():
            problems.append(f"ios/project.yml: entitlements {path} do not exist")
            continue
        try:
            entitlements[path] = plistlib.loads(file.read_bytes())
        except Exception as e:  # noqa: BLE001 - any parse failure is the finding
            problems.append(f"ios/{path}: not a property list ({e})")
    if len(entitlements) != 2:
        problems.append(f"ios/project.yml: expected entitlements for the app and its extension, found {sorted(entitlements)}")
    shared = None
    for path, e in entitlements.items():
        if APP_GROUP not in e.get("com.apple.security.application-groups", []):
            problems.append(f"ios/{path}: not in the App Group {APP_GROUP}")
        groups = set(e.get("keychain-access-groups", []))
        shared = groups if shared is None else shared & groups
    if entitlements and not shared:
        problems.append("ios/project.yml: the app and its extension share no Keychain access group")
    app = [e for p, e in entitlements.items() if p.startswith("App/")]
    if not app or "aps-environment" not in app[0]:
        problems.append("ios/App: the app's entitlements have no aps-environment (push)")

    # The package manifest: every target path but the built XCFramework exists.
    for path in re.findall(r'path:\s*"([^"]+)"', (IOS / "Package.swift").read_text()):
        if not path.endswith(".xcframework") and not (IOS / path).exists():
            problems.append(f"ios/Package.swift: path {path} does not exist")
    return problems


def main() -> int:
    if not GENERATED.exists():
        print(f"{GENERATED} is missing: run scripts/gen-bindings.sh first", file=sys.stderr)
        return 2
    generated = GENERATED.read_text()
    api = declared(strip(generated))
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
            found.extend((n, name) for name in sorted(used - known) if not NUMBER.match(name))
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
    problems.extend(structure(generated))
    uses_api = sum(
        1 for t in texts.values() for w in set(re.findall(r"\w+", t)) if w in api and w not in apple and w not in local
    )
    if problems:
        print("\n".join(problems))
        print(f"{len(problems)} problem(s)")
        return 1
    print(f"Swift API check: {len(SOURCES)} files, every symbol known ({uses_api} distinct uses of the generated API)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
