// module render
