"""Where the project's data folders live (the repository root, next to the package)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOARDS_DIR = ROOT / "boards"
MODELS_DIR = ROOT / "models"
HLS_TEMPLATES_DIR = ROOT / "hls_templates"
