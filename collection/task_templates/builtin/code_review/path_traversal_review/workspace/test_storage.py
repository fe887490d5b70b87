import unittest

from storage import read_upload


class StorageTest(unittest.TestCase):
    def test_reads_an_upload(self):
        self.assertEqual(read_upload("hello.txt"), b"hello\n")


if __name__ == "__main__":
    unittest.main()
