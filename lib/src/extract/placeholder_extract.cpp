// module extract
