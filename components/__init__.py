"""Model code and custom TFX components, importable without the orchestration."""


def __getattr__(name: str):
    # TFX's KFP entrypoint imports custom artifact types by their title, `components.<Class>`;
    # resolved lazily so that the model code does not import TFX.
    if name == "SliceReportFiles":
        from components.slice_report import SliceReportFiles

        return SliceReportFiles
    raise AttributeError(name)
