#!/usr/bin/env bash
# Fetches the public bias benchmarks for `atlas analyze bias` into a folder and checks their sha256
# (the pinned commits below; atlas does not ship these datasets). Not run by the tests.
#   scripts/get-bias-data.sh [DEST]          (default: data/bias)
# Then, e.g.:
#   atlas analyze bias -m MODEL --crows-pairs DEST/crows-pairs/crows_pairs_anonymized.csv \
#     --stereoset DEST/stereoset/dev.json --winobias DEST/winobias --winogender DEST/winogender
# Licenses: CrowS-Pairs and StereoSet CC BY-SA 4.0 (attribution, share-alike); WinoBias and
# Winogender MIT. The datasets contain offensive stereotypes by design.
set -euo pipefail
dest=${1:-data/bias}
command -v curl >/dev/null || { echo "get-bias-data.sh: curl not found" >&2; exit 2; }
gh=https://raw.githubusercontent.com
crows=$gh/nyu-mll/crows-pairs/8aaac11c485473159ec9328a65253a5be9a479dc/data
stereo=$gh/moinnadeem/StereoSet/ead7d086a64a192a1eca88e0dd2fd163de375218/data
wino=$gh/uclanlp/corefBias/0bce984dd081bbc10b0622f326727a024c607895/WinoBias/wino/data
winog=$gh/rudinger/winogender-schemas/1c7f8b481ad8a234b41e9f76a424d6e856e13f7f/data

# folder  file  url  sha256 ("-": not pinned; the script prints what it got)
files=(
  "crows-pairs crows_pairs_anonymized.csv $crows/crows_pairs_anonymized.csv dfb36986ce0502abbaf7055b9176da3d08d48e07df1251991b5dfbcbceab9d0c"
  "stereoset dev.json $stereo/dev.json -"
  "winogender all_sentences.tsv $winog/all_sentences.tsv bd69da16bf228cb8df63fd0843aec2d8b5c36a7f21bf8c7b168bcc83932556c8"
  "winogender occupations-stats.tsv $winog/occupations-stats.tsv 3f7f37c16381a70571356982ea7fe613ac700ad04a6d3b19b9f2be18248df567"
  "winogender templates.tsv $winog/templates.tsv 496f2e2dc77296bcebcdd8865a8dc5715ce22b772de9abb5f531d5b3114c48a0"
  "winobias male_occupations.txt $wino/male_occupations.txt 6b82d88847b69d56d207a0c396e9830b031890de585e916e6b4e9bc50672657e"
  "winobias female_occupations.txt $wino/female_occupations.txt 693bff12286c2c1d46c7d4d45a44a631574710c30b39c1a3001bb7bdebb44ed8"
  "winobias pro_stereotyped_type1.txt.dev $wino/pro_stereotyped_type1.txt.dev dd55a0d220fe4c0ceb63dd4648223fb4fe1a58d5ad95c116a002ad24b0e292a5"
  "winobias pro_stereotyped_type1.txt.test $wino/pro_stereotyped_type1.txt.test db7838907238a758eeb5779e48f38c013b892910d6fe864456c59f04245c6689"
  "winobias pro_stereotyped_type2.txt.dev $wino/pro_stereotyped_type2.txt.dev 8f0250de723cea9328e3eaf7169e07936f01aa5909ce7aa580db66eb803f4e86"
  "winobias pro_stereotyped_type2.txt.test $wino/pro_stereotyped_type2.txt.test ea1c1fd94fa612e3cc44d7fa3cc4cb76021bb63fdf94f9826f430051e9052438"
  "winobias anti_stereotyped_type1.txt.dev $wino/anti_stereotyped_type1.txt.dev a4e0ebae344e78b56f657a42e8ae684b9db7747d177c5e7149c0907ebb7f3bf6"
  "winobias anti_stereotyped_type1.txt.test $wino/anti_stereotyped_type1.txt.test 331db5bd74bfefebf146a60b67645152a4a1991570d2a56f57154103ac361dd2"
  "winobias anti_stereotyped_type2.txt.dev $wino/anti_stereotyped_type2.txt.dev 763ad829ad724f9a85ead689ba8ca69072020cb1238def6210f0fc6a47b97e59"
  "winobias anti_stereotyped_type2.txt.test $wino/anti_stereotyped_type2.txt.test 336571ac1ea8c06cd2aba8e5dd2bd98e00acc0c48da3e4ec5ec7e54eb2633a8f"
)
bad=0
for entry in "${files[@]}"; do
  read -r folder name url want <<<"$entry"
  mkdir -p "$dest/$folder"
  out="$dest/$folder/$name"
  if [ ! -s "$out" ]; then
    curl -fsSL --retry 3 -o "$out.part" "$url" || { echo "FAILED  $url" >&2; rm -f "$out.part"; bad=1; continue; }
    mv "$out.part" "$out"
  fi
  got=$(sha256sum "$out" | cut -d' ' -f1)
  if [ "$want" = "-" ]; then
    echo "fetched $out (sha256 $got, not pinned)"
  elif [ "$got" = "$want" ]; then
    echo "ok      $out"
  else
    echo "MISMATCH $out: sha256 $got, expected $want" >&2
    bad=1
  fi
done
exit $bad
