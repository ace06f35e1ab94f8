"""Model code and custom TFX components, importable without the orchestration."""
