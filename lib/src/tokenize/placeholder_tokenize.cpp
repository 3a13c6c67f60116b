// module tokenize
