// module models
