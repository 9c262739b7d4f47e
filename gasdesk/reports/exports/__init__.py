"""Report files: on-demand exports (xlsx, PDF) of any report, and the scheduled daily/weekly reports."""
