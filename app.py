"""The FastDiff app, run from a checkout: `python app.py [--port 7860] ...` (the same as `fastdiff app`)."""

from fastdiff.app.ui import main

if __name__ == "__main__":
    main()
