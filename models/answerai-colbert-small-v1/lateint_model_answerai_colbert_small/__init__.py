"""answerai-colbert-small-v1 for lateint-lite: a model folder (manifest.json, model.onnx,
tokenizer.json, LICENSE, NOTICE) offered through the ``lateint_lite.models`` entry point group."""

from pathlib import Path

#: The model folder lateint-lite loads (``li.open(..., model="answerai-colbert-small-v1")``).
MODEL_DIR = Path(__file__).resolve().parent / "model"
