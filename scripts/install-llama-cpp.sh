#!/usr/bin/env bash
# Build (once per machine and flag set) and install llama-cpp-python into the current Python.
#
# Why not a plain `pip install llama-cpp-python`: PyPI has only the sdist, and its default
# build uses -march=native. On these VMs gcc's native target includes AMX, which the kernel
# does not enable: every llama_decode segfaults. Unless CMAKE_ARGS says otherwise, we enable
# exactly the instruction sets /proc/cpuinfo lists, and keep the wheel under a key of the
# version and the flags, so a clean clone on the same machine (CI) reuses it instead of
# recompiling for ~5 minutes.
set -euo pipefail
PY=${PY:-python}
VERSION=${LLAMA_CPP_PYTHON_VERSION:-0.3.36}
if [ -z "${CMAKE_ARGS:-}" ] && [ "$(uname -m)" = "x86_64" ] && [ -r /proc/cpuinfo ]; then
  # The instruction sets /proc/cpuinfo reports, except AMX: these VMs list amx_tile/amx_int8
  # but a build using them segfaults in the first decode.
  flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
  args="-DGGML_NATIVE=OFF"
  for pair in avx:AVX avx2:AVX2 fma:FMA f16c:F16C bmi2:BMI2 avx_vnni:AVX_VNNI avx512f:AVX512 \
              avx512_vbmi:AVX512_VBMI avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16; do
    case "$flags" in *" ${pair%%:*} "*) args="$args -DGGML_${pair#*:}=ON" ;; esac
  done
  export CMAKE_ARGS="$args"
fi
key=$(printf '%s|%s|%s' "$VERSION" "${CMAKE_ARGS:-}" "$($PY -c 'import sys; print(sys.version_info[:2])')" | sha256sum | cut -c1-16)
wheels="${DSV2_WHEEL_CACHE:-$HOME/.cache/dsv2-wheels}/$key"
if ! ls "$wheels"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  echo "building llama-cpp-python $VERSION (CMAKE_ARGS=${CMAKE_ARGS:-}) into $wheels" >&2
  mkdir -p "$wheels.tmp"
  $PY -m pip wheel --no-deps --no-cache-dir --no-binary llama-cpp-python \
      -w "$wheels.tmp" "llama-cpp-python==$VERSION"
  rm -rf "$wheels" && mv "$wheels.tmp" "$wheels"
fi
$PY -m pip install --no-deps --force-reinstall "$wheels"/llama_cpp_python-*.whl
