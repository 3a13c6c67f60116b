#!/usr/bin/env bash
# atlas visualize through the binary: every kind, formats, batches, and one-line errors with exit 1
# and no partial file. Inputs are written with numpy (the NPZ contract, docs/formats/attention-npz.md).
set -euo pipefail
: "${ATLAS:?}" "${ATLAS_PYTHON:?}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$ATLAS_PYTHON" - "$tmp" <<'PY'
import json, sys, numpy as np
d = sys.argv[1]
toks = ['<s>', 'The', 'Ġcat', 'Ġsat', 'Ġon', 'Ġthe', 'Ġmat']
Q = len(toks); L, H = 2, 3
rng = np.random.default_rng(0)
A = rng.random((L, H, Q, Q)).astype(np.float32) * np.tril(np.ones((Q, Q), np.float32))
A /= A.sum(-1, keepdims=True)
meta = {"format": "atlas.attention", "format_version": 1, "created": "2026-01-02T03:04:05Z",
        "model": {"path": "/m/tiny", "causal": True, "checkpoint_sha256": "feed"},
        "input": {"text": "The cat sat on the mat", "source": "text"}}
offs = [[-1, -1], [0, 3], [3, 7], [7, 11], [11, 14], [14, 18], [18, 22]]
np.savez(d + '/ok.npz', attention=A, layers=np.arange(L), heads=np.arange(H), tokens=np.array(toks),
         token_labels=np.array([t.replace('Ġ', ' ') for t in toks]), offsets=np.array(offs),
         special=np.array([True] + [False] * (Q - 1)), meta=np.array(json.dumps(meta)))
np.savez(d + '/noatt.npz', tokens=np.array(toks))
def text_npz(name, pieces):
    # pieces: token labels; '<s>' special; the text is the other labels joined, offsets index it.
    q = len(pieces); att = rng.random((L, H, q, q)).astype(np.float32) * np.tril(np.ones((q, q), np.float32))
    att /= att.sum(-1, keepdims=True)
    offs, pos, text = [], 0, ''
    for p in pieces:
        if p.startswith('<'): offs.append([-1, -1]); continue
        offs.append([pos, pos + len(p)]); pos += len(p); text += p
    m = dict(meta, input={"text": text, "source": "text"})
    np.savez(d + '/' + name, attention=att, layers=np.arange(L), heads=np.arange(H), tokens=np.array(pieces),
             token_labels=np.array(pieces), offsets=np.array(offs), special=np.array([p.startswith('<') for p in pieces]),
             meta=np.array(json.dumps(m)))
# A he/she minimal pair that tokenizes to 8 and 9 tokens (6 words each), and a pronoun sentence.
text_npz('lily.npz', ['<s>', 'Lily', ' went', ' home', '.', ' She', ' slept', '.'])
text_npz('tom.npz', ['<s>', 'T', 'om', ' went', ' home', '.', ' He', ' slept', '.'])
text_npz('lucy.npz', ['<s>', 'Mom', ' told', ' L', 'u', 'cy', ' that', ' she', ' could', ' have', ' a', ' cookie',
                      ' and', ' she', ' sm', 'iled', '.'])
B = A.copy(); B[1, 2, 3, 0] = np.nan
np.savez(d + '/nan.npz', attention=B, layers=np.arange(L), heads=np.arange(H), tokens=np.array(toks),
         meta=np.array(json.dumps(meta)))
PY

help="$("$ATLAS" visualize --help)" || fail "--help"
# The footer shows one example per kind, a batch and a style example.
for want in "Examples:" "atlas extract --model examples/models/stories260K" "--all-layers" "--style dark"; do
  printf '%s' "$help" | grep -q -- "$want" || fail "--help lacks '$want'"
done
for kind in heatmap grid flow flowgraph contrast profile; do
  printf '%s' "$help" | grep -q "atlas visualize $kind " || fail "--help has no $kind example"
done
for kind in heatmap grid flow flowgraph profile; do
  "$ATLAS" visualize "$kind" "$tmp/ok.npz" -o "$tmp/$kind.png" --dpi 72 >/dev/null || fail "$kind"
  [ -s "$tmp/$kind.png" ] || fail "$kind wrote nothing"
done
"$ATLAS" visualize contrast "$tmp/ok.npz" "$tmp/ok.npz" -o "$tmp/c.pdf" >/dev/null || fail contrast
"$ATLAS" visualize contrast "$tmp/ok.npz" "$tmp/ok.npz" -o "$tmp/c2.png" --layer 0 --layer-b 1 --head mean \
  >/dev/null || fail "contrast of two layers"
"$ATLAS" visualize heatmap "$tmp/ok.npz" -o "$tmp/h.svg" --layer 1 --head 2 --values --style slides >/dev/null || fail svg
"$ATLAS" visualize heatmap "$tmp/ok.npz" -o "$tmp/h.eps" --head mean --hide-special >/dev/null || fail eps
head -c 20 "$tmp/h.eps" | grep -q '%!PS-Adobe-3.0 EPSF' || fail "eps header"
# PNG size from --width/--height in pixels
"$ATLAS" visualize heatmap "$tmp/ok.npz" -o "$tmp/sized.png" --width 800px --height 600px --dpi 200 >/dev/null
"$ATLAS_PYTHON" -c "import struct,sys; b=open(sys.argv[1],'rb').read(24); w,h=struct.unpack('>II',b[16:24]); sys.exit(0 if (w,h)==(800,600) else 1)" \
  "$tmp/sized.png" || fail "png size"
# batch into a directory, in parallel
"$ATLAS" visualize heatmap "$tmp/ok.npz" -o "$tmp/batch/" --all-layers --all-heads -j 2 >/dev/null || fail batch
[ "$(ls "$tmp/batch" | wc -l)" -eq 6 ] || fail "batch count"

# PNGs record their dpi: a pHYs chunk (pixels per metre) right after IHDR, with a valid CRC.
"$ATLAS" visualize heatmap "$tmp/ok.npz" -o "$tmp/dpi.png" --dpi 150 >/dev/null
"$ATLAS_PYTHON" - "$tmp/dpi.png" 150 <<'PY' || fail "pHYs"
import struct, sys, zlib
b = open(sys.argv[1], 'rb').read(); dpi = int(sys.argv[2])
assert b[:8] == b'\x89PNG\r\n\x1a\n'
chunks, p = [], 8
while p < len(b):
    n, t = struct.unpack('>I4s', b[p:p + 8]); data = b[p + 8:p + 8 + n]
    assert struct.unpack('>I', b[p + 8 + n:p + 12 + n])[0] == zlib.crc32(t + data), t
    chunks.append((t, data)); p += 12 + n
assert chunks[0][0] == b'IHDR' and chunks[1][0] == b'pHYs', [c[0] for c in chunks[:3]]
x, y, unit = struct.unpack('>IIB', chunks[1][1])
assert unit == 1 and x == y == round(dpi / 0.0254), (x, y, unit)
assert abs(x * 0.0254 - dpi) < 0.5
PY
# flow: the head mean and the 3 strongest links per query by default; --top-links / --head all change it.
links() { grep -o 'fill:none' "$1" | wc -l; }
"$ATLAS" visualize flow "$tmp/ok.npz" -o "$tmp/f3.svg" --threshold 0 >/dev/null
[ "$(links "$tmp/f3.svg")" -eq 18 ] || fail "flow default top-3: $(links "$tmp/f3.svg") links"
"$ATLAS" visualize flow "$tmp/ok.npz" -o "$tmp/f1.svg" --threshold 0 --top-links 1 >/dev/null
[ "$(links "$tmp/f1.svg")" -eq 7 ] || fail "flow --top-links 1"
"$ATLAS" visualize flow "$tmp/ok.npz" -o "$tmp/fa.svg" --threshold 0 --top-links 1 --head all >/dev/null
[ "$(links "$tmp/fa.svg")" -eq 21 ] || fail "flow --head all --top-links 1"

# Word level: contrast of two texts of different tokenisation, each panel labelled with its own words.
"$ATLAS" visualize contrast "$tmp/lily.npz" "$tmp/tom.npz" -o "$tmp/pair.pdf" >/dev/null || fail "contrast 8 vs 9 tokens"
"$ATLAS" visualize contrast "$tmp/lily.npz" "$tmp/tom.npz" -o "$tmp/pair.png" --words --layer -1 >/dev/null \
  || fail "contrast --words"
if command -v pdftotext >/dev/null; then
  txt="$(pdftotext "$tmp/pair.pdf" - | tr -s ' \n' ' ')"
  for want in "Lily/Tom" "She/He" "slept." "6 words each, compared position by position"; do
    printf '%s' "$txt" | grep -qF -- "$want" || fail "contrast PDF lacks '$want': $txt"
  done
fi
for kind in heatmap grid flow flowgraph profile; do
  "$ATLAS" visualize "$kind" "$tmp/lucy.npz" -o "$tmp/w-$kind.png" --words --dpi 72 >/dev/null || fail "$kind --words"
done
"$ATLAS" visualize flow "$tmp/lucy.npz" -o "$tmp/focus-lucy.svg" --focus Lucy --threshold 0 --top-links 1 >/dev/null \
  || fail "--focus Lucy"
[ "$(links "$tmp/focus-lucy.svg")" -eq 3 ] || fail "--focus Lucy keeps its 3 tokens' links"
"$ATLAS" visualize flow "$tmp/lucy.npz" -o "$tmp/focus-she2.svg" --focus 'she#2' --words --threshold 0 --top-links 0 \
  >/dev/null || fail "--focus she#2"
[ "$(links "$tmp/focus-she2.svg")" -eq 12 ] || fail "--focus she#2 at word level: the 12th word's 12 links"
"$ATLAS" visualize flowgraph "$tmp/lucy.npz" -o "$tmp/target-she2.png" --target 'she#2' --dpi 72 >/dev/null \
  || fail "--target she#2"

# errors: exit 1, one line, no output file
expect_error() {  # expect_error PATTERN OUTFILE args...
  local pattern="$1" out="$2"; shift 2
  set +e; msg="$("$ATLAS" visualize "$@" 2>&1 >/dev/null)"; rc=$?; set -e
  [ "$rc" -eq 1 ] || fail "expected exit 1, got $rc for: $*"
  [ "$(printf '%s\n' "$msg" | wc -l)" -eq 1 ] || fail "expected one line, got: $msg"
  printf '%s' "$msg" | grep -q "$pattern" || fail "expected '$pattern' in: $msg"
  [ ! -e "$out" ] || fail "partial file $out"
  ls -a "$(dirname "$out")" 2>/dev/null | grep -q '\.tmp-' && fail "temp file left in $(dirname "$out")"
  return 0
}
expect_error "has no array 'attention'" "$tmp/e1.png" heatmap "$tmp/noatt.npz" -o "$tmp/e1.png"
expect_error "nan.npz': attention holds NaN at layer 1, head 2 (query 3, key 0)" "$tmp/e0.png" \
  heatmap "$tmp/nan.npz" -o "$tmp/e0.png"
expect_error "Lily.*Mom told Lucy" "$tmp/e0b.png" flow "$tmp/lucy.npz" -o "$tmp/e0b.png" --focus Lily
expect_error "she#3" "$tmp/e0c.png" flow "$tmp/lucy.npz" -o "$tmp/e0c.png" --focus 'she#3' --words
expect_error "layer 9 is not there" "$tmp/e2.png" heatmap "$tmp/ok.npz" -o "$tmp/e2.png" --layer 9
expect_error "head 5 is not there" "$tmp/e3.png" heatmap "$tmp/ok.npz" -o "$tmp/e3.png" --head 5
expect_error "layer-b '7': layer 7 is not there" "$tmp/e3b.png" contrast "$tmp/ok.npz" "$tmp/ok.npz" -o "$tmp/e3b.png" --layer-b 7
expect_error "apply to contrast only" "$tmp/e3c.png" heatmap "$tmp/ok.npz" -o "$tmp/e3c.png" --layer-b 1
printf 'font_size: 3\n' > "$tmp/bad.yaml"
expect_error "bad.yaml': unknown key 'font_size'" "$tmp/e4.png" heatmap "$tmp/ok.npz" -o "$tmp/e4.png" --style "$tmp/bad.yaml"
expect_error "unknown colour map 'jet'" "$tmp/e5.png" heatmap "$tmp/ok.npz" -o "$tmp/e5.png" --colormap jet
expect_error "does not exist" "$tmp/nodir/e6.png" heatmap "$tmp/ok.npz" -o "$tmp/nodir/e6.png"
mkdir "$tmp/ro" && chmod 555 "$tmp/ro"
if [ "$(id -u)" -ne 0 ]; then
  expect_error "not writable" "$tmp/ro/e7.png" heatmap "$tmp/ok.npz" -o "$tmp/ro/e7.png"
fi
expect_error "unknown figure format" "$tmp/e8.bmp" heatmap "$tmp/ok.npz" -o "$tmp/e8.bmp"
expect_error "does not exist" "$tmp/e9.png" heatmap "$tmp/missing.npz" -o "$tmp/e9.png"
set +e; "$ATLAS" visualize nosuchkind "$tmp/ok.npz" -o "$tmp/x.png" >/dev/null 2>&1; rc=$?; set -e
[ "$rc" -eq 2 ] || fail "unknown kind should be a usage error (2), got $rc"
# profile of a head-metrics NPZ (atlas analyze heads -o): one metric as a layer x head map
"$ATLAS" analyze heads "$tmp/ok.npz" -o "$tmp/heads.npz" >/dev/null
"$ATLAS" visualize profile "$tmp/heads.npz" --metric sink_mass -o "$tmp/heads-sink.png" >/dev/null
[ -s "$tmp/heads-sink.png" ] || fail "profile of a head-metrics NPZ wrote nothing"
expect_error "holds no such metric" "$tmp/e10.png" profile "$tmp/heads.npz" --metric nope -o "$tmp/e10.png"
echo "test_visualize: ok"
