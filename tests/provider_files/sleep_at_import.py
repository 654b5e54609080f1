import time

time.sleep(45)
