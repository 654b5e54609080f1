import subprocess
import sys

# A helper process too, which must die with the validator.
MARK = "quasar-hostile-grandchild"
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", MARK])
while True:
    pass
