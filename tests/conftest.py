import pathlib
import sys

# test-support modules (synthetic_weights) live beside the tests
sys.path.insert(0, str(pathlib.Path(__file__).parent))
