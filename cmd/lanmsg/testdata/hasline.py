"""Test helper: exit 0 if FILE has a line ending in SEP followed by exactly N
copies of CHAR (too long for a Go regexp's repeat count)."""
import sys

path, sep, char, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
want = sep + char * n
found = any(line.rstrip("\n").endswith(want) and not line.rstrip("\n").endswith(char + want)
            for line in open(path, encoding="utf-8"))
if not found:
    sys.exit(f"{path}: no line ends with {sep!r} and {n} x {char!r}")
