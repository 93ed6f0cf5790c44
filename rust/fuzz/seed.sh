#!/usr/bin/env bash
# Seeds the fuzz corpora with files TensorFlow wrote (tests/fixtures).
set -euo pipefail
cd "$(dirname "$0")"
fixtures=../../tests/fixtures
mkdir -p corpus/table corpus/bundle corpus/strings corpus/slices corpus/v1
for index in "$fixtures"/*/*.index "$fixtures"/savedmodel_*/variables/*.index; do
    name="${index#"$fixtures"/}"; name="${name//\//_}"
    cp "$index" "corpus/table/$name"
    data="${index%.index}.data-00000-of-00001"
    if [ -f "$data" ] && [ "$(stat -c %s "$index")" -lt 65536 ]; then
        # bundle inputs: 2-byte little-endian index length, the index, then the data file.
        python3 -c 'import sys; i=open(sys.argv[1],"rb").read(); d=open(sys.argv[2],"rb").read(); sys.stdout.buffer.write(len(i).to_bytes(2,"little")+i+d)' "$index" "$data" > "corpus/bundle/$name"
    fi
done
cp "$fixtures/v1_format/model.ckpt" corpus/v1/tf_v1
cp "$fixtures/v1_format/model.ckpt" corpus/table/tf_v1
printf '\x05\x00\x03abc\x00\x00\x00\x00' > corpus/strings/small
printf '\x05\x07\x03-:0,3:2,1' > corpus/slices/spec
