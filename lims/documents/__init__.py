"""PDF documents: labels with 2-D and linear barcodes, certificates of analysis, custody
reports. Each records what it shows by hash, and printing a label is a custody event."""
