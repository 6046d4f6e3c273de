'use strict';

// Serves the Todo page. The page calls the API relative to its own URL, so the same file works
// under any stage and against the Rust example too.
const fs = require('fs');
const path = require('path');

const page = fs.readFileSync(path.join(__dirname, 'public', 'index.html'), 'utf8');

module.exports.page = async () => ({
  statusCode: 200,
  headers: { 'Content-Type': 'text/html; charset=utf-8' },
  body: page,
});
