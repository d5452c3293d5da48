# tinynet — everything a fresh machine needs is installed from here.
PY      ?= python3
PIP     ?= $(PY) -m pip
DATADIR := /usr/share/datasets/fashion-mnist
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SHELL   := /bin/bash

.PHONY: setup data demo notebooks test bench gpu-test gpu-check clean

setup:            ## install tinynet (editable) with test, Numba and plot extras
	$(PIP) install -q -e ".[dev]"

data:             ## real Fashion-MNIST from Debian's dataset-fashion-mnist package
	@if [ ! -f $(DATADIR)/train-images-idx3-ubyte.gz ]; then \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dataset-fashion-mnist; \
	fi
	$(PY) -m tinynet data

demo: setup data  ## the main job: train the default CNN on Fashion-MNIST, print and save the report (runs/cnn_dropout02, or -2, -3... once that holds a run)
	$(PY) -m tinynet train --model cnn_dropout02 --epochs 10 --backend numba --lr 2e-3 --cosine --label-smoothing 0.1 --validation 0 --select last

notebooks: setup data ## install JupyterLab and what the notebooks need, then open notebooks/ in it
	$(PIP) install -q -e ".[notebooks]"
	$(PY) -m jupyter lab notebooks/

test: setup data  ## lint, types (mypy) + the whole test suite: the CUDA compile gate and the PyTorch oracle included (GPU tests skip without a GPU)
	$(PIP) install -q -e ".[cuda-compile,torch,onnx,notebooks]"
	ruff check .
	mypy
	$(PY) -m bench.tables --check
	$(PY) -m pytest -q

bench: setup data ## CPU benchmark vs PyTorch (installs the torch 2.13 CPU wheel), results into bench/out
	$(PIP) install -q -e ".[bench]"
	$(PY) -m bench.train_epoch --backends numpy,numba,torch --batch-size 32,128 --out bench/out
	$(PY) -m bench.layers --backends numpy,numba,torch

gpu-test:         ## only the GPU tests (run where CuPy and a GPU exist)
	$(PY) -m pytest -q -m gpu

GPU_OUT := bench/out-gpu
gpu-check:        ## on a GPU machine (installs nothing): bench/gpu_check.sh, then the GPU section of bench/RESULTS.md
	bash bench/gpu_check.sh $(GPU_OUT)
	$(PY) -m bench.gpu_report $(GPU_OUT)

clean:
	rm -rf runs .pytest_cache .hypothesis build *.egg-info
